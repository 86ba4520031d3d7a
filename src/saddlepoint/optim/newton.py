"""The literal per-player Newton step (``newton``) and the machinery the Newton-type game methods share.

``newton`` is the lever of the article that updates each network with the Hessian of its **own** loss,
H_ii = ∂²f_i/∂θ_i²: every player solves its own damped Newton system and steps

    (B_i + λ_i I) p_i = −g_i,   θ_i ← θ_i + η_i p_i

with B_i the Hessian of its own loss (``curvature: hessian``) or its Gauss–Newton matrix
(``curvature: gauss-newton``, for losses of declared outputs, :class:`DeclaredLosses`), g_i = ∇_{θ_i} f_i.
It is **not a game method**: each player treats the other as fixed, as Newton's method on each network alone
would. On a strict local minimax that is not a local Nash equilibrium it diverges for every step size
(f = −3x² + 4xy − y², the ``local-minimax`` game: spectral radius 1 + η(2/√3 − 1) simultaneous, 4/3 at
η = 1 alternating; derived in ``tests/optim/test_newton.py``, measured in docs/optimizers.md). The
Newton-type methods that do converge there (the follower on its own Hessian, the leader on the Schur
complement) are in :mod:`.ridge`.

Shared machinery (used by :mod:`.ridge` too):

* :func:`damped_solve`: v ≈ A⁻¹b for a symmetric curvature operator A given as a product, damped by λ:
  ``system: direct`` solves (A + λI)v = b (one product per Krylov iteration; ``krylov: cg`` stops at the first
  direction of non-positive curvature, as truncated Newton does; ``krylov: cr`` — conjugate residuals in their
  symmetric-indefinite form — solves indefinite systems too), ``system: normal`` solves the damped normal
  equations (A² + λI)v = Ab (Tikhonov: symmetric positive definite for any symmetric A, two products per
  iteration; the Follow-the-Ridge authors' choice). Both return A·v too, tracked along the iterates at no cost.
* :func:`levenberg_marquardt`: Martens (2010, "Deep learning via Hessian-free optimization", §4.1): with the
  reduction ratio ρ = (f(θ + s) − f(θ)) / (q(s) − q(0)), q(s) = gᵀs + ½ sᵀBs the undamped quadratic model,
  λ ← 3/2 λ if ρ < 1/4 and λ ← 2/3 λ if ρ > 3/4.
* :class:`NewtonMethod`: the solver's hyper-parameters, the first evaluation (it keeps the closure's
  declarations and the buffers it leaves), losses at shifted points (averaged over data-parallel workers and
  unscaled, so every rank takes the same damping decision).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .. import checks
from ..errors import ConfigError
from .base import OPTIMIZERS, Closure
from .derivatives import GameDerivatives, flatten, straight_through, unflatten, vjp
from .krylov import cg, cr
from .second_order import SecondOrder

__all__ = ["DeclaredLosses", "GaussNewtonProducts", "Newton", "NewtonMethod", "damped_solve", "levenberg_marquardt"]

MatVec = Callable[[Tensor], Tensor]


# ----------------------------------------------------------------------------- declarations
class DeclaredLosses(list):
    """A closure's list of losses with a declaration for Gauss–Newton curvature: ``outputs[i]`` are the tensors
    (a GAN discriminator's logits) through which player i's parameters reach its loss, f_i = L_i(u_i(θ_i)).
    Terms of f_i that do not go through them (a gradient penalty) are left out of the Gauss–Newton matrix."""

    def __init__(self, losses: Sequence[Tensor], outputs: Mapping[int, Sequence[Tensor]] | None = None) -> None:
        super().__init__(losses)
        self.outputs: dict[int, list[Tensor]] = {i: list(u) for i, u in (outputs or {}).items()}


class GaussNewtonProducts:
    """v ↦ Jᵀ (∇²_u L) J v, the Gauss–Newton product of a loss L(u(θ)) with outputs u (Schraudolph 2002;
    Martens 2010, §4.2). J v by the double-vjp trick: Jᵀw is built once as a function of a dummy w (one backward
    pass with graph); each product is then a backward pass through it (J v), one through the loss head
    (∇²_u L·Jv, cheap: u is small) and one through the network (Jᵀ·). For a convex loss of the outputs (the
    logistic losses of D and of the non-saturating G) the matrix is positive semi-definite; for the saturating
    generator loss −softplus(u) it is negative semi-definite."""

    def __init__(self, loss: Tensor, outputs: Sequence[Tensor], params: Sequence[Tensor]) -> None:
        self.params = list(params)
        self.outputs = [u for u in outputs if u.requires_grad]
        if not self.outputs or not loss.requires_grad:
            self.grads_u: list[Tensor] = []
            self.dummies: list[Tensor] = []
            self.jt: list[Tensor] = []
            return
        grads = torch.autograd.grad(loss, self.outputs, create_graph=True, retain_graph=True, allow_unused=True)
        self.grads_u = [torch.zeros_like(u) if g is None else g for u, g in zip(self.outputs, grads, strict=True)]
        self.dummies = [torch.zeros_like(u, requires_grad=True) for u in self.outputs]
        self.jt = vjp(self.outputs, self.params, self.dummies, create_graph=True)

    def __call__(self, v: Sequence[Tensor]) -> list[Tensor]:
        if not self.outputs:
            return [torch.zeros_like(p) for p in self.params]
        jv = vjp(self.jt, self.dummies, [t.detach() for t in v])
        hjv = vjp(self.grads_u, self.outputs, jv)
        return vjp(self.outputs, self.params, hjv)


# ----------------------------------------------------------------------------- solves
def damped_solve(
    apply: MatVec,
    b: Tensor,
    damping: float,
    *,
    system: str = "direct",
    krylov: str = "cg",
    tol: float = 1e-10,
    max_iter: int | None = None,
    info: dict[str, Any] | None = None,
) -> tuple[Tensor, Tensor]:
    """``(v, A·v)`` with v ≈ A⁻¹b, for a symmetric A given as ``apply`` on flat vectors, damped by λ = ``damping``:

    * ``system="direct"``: (A + λI) v = b; ``krylov="cg"`` stops at non-positive curvature (returning the iterate
      reached, or b itself at the first direction), ``"cr"`` accepts indefinite systems; one product per iteration;
    * ``system="normal"``: (A² + λI) v = A b, symmetric positive definite for any symmetric A and λ > 0 (at λ = 0
      the exact A⁻¹b for an invertible A); one product for the right-hand side, two per iteration.

    ``tol`` is the relative residual norm of the system solved, ``max_iter`` its Krylov iterations. A·v comes
    from the products the solver computes anyway (``side`` of :func:`~saddlepoint.optim.krylov.cg`). ``info``
    gets the solver's fields plus ``products`` (applications of A)."""
    info = {} if info is None else info
    zeros = torch.zeros_like(b)
    if not bool(torch.any(b != 0)):
        info.update(iterations=0, residual=0.0, converged=True, products=0, matvecs=0)
        return zeros, zeros
    count = [0]
    last: dict[str, Tensor] = {}

    def product(v: Tensor) -> Tensor:
        count[0] += 1
        return apply(v)

    if system == "direct":
        def matvec(v: Tensor) -> Tensor:
            last["side"] = product(v)
            return last["side"] + damping * v

        rhs = b
    elif system == "normal":
        def matvec(v: Tensor) -> Tensor:
            last["side"] = product(v)
            return product(last["side"]) + damping * v

        rhs = product(b)
    else:
        raise ValueError(f"system must be 'direct' or 'normal', got {system!r}")
    if krylov == "cr":
        v, _ = cr(matvec, rhs, tol=tol, max_iter=max_iter, info=info, side=lambda: last["side"],
                  definite=system == "normal")
    elif krylov == "cg":
        v, _ = cg(matvec, rhs, tol=tol, max_iter=max_iter, info=info, side=lambda: last["side"])
    else:
        raise ValueError(f"krylov must be 'cg' or 'cr', got {krylov!r}")
    av = info.get("side")
    info["products"] = count[0]
    return v, (zeros if av is None else av)


def levenberg_marquardt(damping: float, rho: float | None, *, floor: float = 1e-8, ceiling: float = 1e8) -> float:
    """Martens (2010, §4.1): λ ← 3/2 λ if ρ < 1/4 (NaN and −∞ included), λ ← 2/3 λ if ρ > 3/4, kept in
    [``floor``, ``ceiling``]; λ = 0 stays 0 (undamped), ρ = None leaves λ as it is."""
    if damping == 0.0 or rho is None:
        return damping
    if not rho >= 0.25:
        damping *= 1.5
    elif rho > 0.75:
        damping *= 2.0 / 3.0
    return min(max(damping, floor), ceiling)


# ----------------------------------------------------------------------------- shared base
SOLVER_KEYS = frozenset({"adapt_damping", "system", "krylov", "tol", "max_iter"})


class NewtonMethod(SecondOrder):
    """Shared by ``newton`` and the methods of :mod:`.ridge`: the solver's hyper-parameters (``damping``,
    ``adapt_damping``, ``system``, ``krylov``, ``tol``, ``max_iter``; see :func:`damped_solve`), the first
    evaluation of a step, and losses/gradients at shifted points."""

    requires_double_backward = True

    def __init__(self, players, **hyper_parameters) -> None:
        super().__init__(players, **hyper_parameters)
        shared = self.shared
        shared["adapt_damping"] = checks.boolean("optim.adapt_damping", shared["adapt_damping"])
        shared["system"] = checks.choice("optim.system", shared["system"], ("direct", "normal"), lower=True)
        shared["krylov"] = checks.choice("optim.krylov", shared["krylov"], ("cg", "cr"), lower=True)
        shared["tol"] = checks.non_negative("optim.tol", shared["tol"])
        shared["max_iter"] = checks.positive_int("optim.max_iter", shared["max_iter"])
        for hp in [*self.hp, shared]:
            if "damping" in hp:
                hp["damping"] = checks.non_negative("optim.damping", hp["damping"])
        #: declarations of the last base evaluation (:class:`DeclaredLosses`)
        self._outputs: dict[int, list[Tensor]] | None = None

    # ------------------------------------------------------------------ evaluations
    def base_evaluation(self, evaluate: Closure) -> list[Tensor]:
        """A closure call at the point the step starts from (keeps its declarations and the buffers it leaves:
        the step's further evaluations at shifted points must not be the ones BatchNorm remembers)."""
        raw = evaluate()
        self._pushforward = getattr(raw, "pushforward", None) if self.wants_pushforward else None
        losses = list(raw)  # every loss computed: a lazy closure's declarations are complete after this
        self._outputs = getattr(raw, "outputs", None)
        if self.buffers:
            self._buffers_after_first = [b.detach().clone() for b in self.buffers]
        return losses

    first_evaluation = base_evaluation

    def value(self, loss: Tensor) -> float:
        """A loss as a float: unscaled (loss scaling) and averaged over data-parallel workers."""
        v = loss.detach().reshape(1).to(torch.float64)
        scaler = self.active_scaler
        if scaler is not None:
            v = v / scaler.scale
        if self.reduce is not None:
            v = self.reduce([v])[0]
        return float(v)

    @contextlib.contextmanager
    def shifted(self, shifts: Mapping[int, Tensor]) -> Iterator[None]:
        """Players' parameters moved by flat ``shifts`` inside the block, restored after it. (In-place: a graph
        through a shifted player taken before is unusable afterwards, so take its products first.)"""
        saved = {i: self.snapshot(i) for i in shifts}
        try:
            for i, s in shifts.items():
                self.add_to_params(i, unflatten(s.detach(), self.players[i]))
            yield
        finally:
            for i, values in saved.items():
                self.set_params(i, values)

    def gradient_at(self, evaluate: Closure, shifts: Mapping[int, Tensor], k: int, i: int) -> Tensor:
        """∇_{θ_i} f_k (flat, averaged over workers, unscaled, checked) at the point shifted by ``shifts``:
        one closure call, one gradient."""
        with self.shifted(shifts):
            d = self.derivatives(evaluate, list(evaluate()))
            return flatten([g.detach() for g in d.grad(k, i, graph=False)])

    def loss_at(self, evaluate: Closure, shifts: Mapping[int, Tensor], k: int) -> float:
        """f_k (as :meth:`value`) at the point shifted by ``shifts``: one closure call, no gradient."""
        with self.shifted(shifts):
            return self.value(evaluate()[k])

    # ------------------------------------------------------------------ products and solves
    def hessian_operator(self, d: GameDerivatives, k: int, i: int) -> MatVec:
        """v ↦ ∇²_{θ_i} f_k · v on flat vectors (exact or fd, as ``hvp``)."""
        params = self.players[i]

        def apply(v: Tensor) -> Tensor:
            return flatten([t.detach() for t in d.mixed(k, i, i, unflatten(v, params))])

        return apply

    def gauss_newton_operator(self, losses: Sequence[Tensor], k: int, i: int) -> MatVec:
        """v ↦ Jᵀ(∇²_u f_k)J v for player i through the outputs the closure declared (:class:`DeclaredLosses`),
        averaged over workers and unscaled like every product."""
        outputs = (self._outputs or {}).get(i)
        if outputs is None:
            raise ConfigError(
                f"optim.curvature: gauss-newton needs a closure that declares player {i}'s outputs "
                "(saddlepoint.optim.newton.DeclaredLosses: the logits its loss is a function of); this closure "
                "declares none — use curvature: hessian")
        products = GaussNewtonProducts(losses[k], outputs, self.players[i])
        params = self.players[i]

        def apply(v: Tensor) -> Tensor:
            out = [t.detach() for t in products(unflatten(v, params))]
            self.counts["hvp"] += 1
            return flatten(self.finish(out))

        return apply

    def finish(self, tensors: list[Tensor]) -> list[Tensor]:
        """Unscale, average over the workers, check (what :class:`GameDerivatives` does to its products)."""
        scaler = self.active_scaler
        if scaler is not None:
            tensors = scaler.unscale(tensors)
        if self.reduce is not None:
            tensors = straight_through(tensors, self.reduce([t.detach() for t in tensors]))
        if scaler is not None:
            scaler.check(tensors)
        return tensors

    def solve(self, apply: MatVec, b: Tensor, damping: float, info: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """:func:`damped_solve` with the method's ``system``, ``krylov``, ``tol`` and ``max_iter``."""
        s = self.shared
        return damped_solve(apply, b, damping, system=s["system"], krylov=s["krylov"], tol=float(s["tol"]),
                            max_iter=int(s["max_iter"]), info=info)


def _dot(a: Tensor, b: Tensor) -> float:
    return float(torch.dot(a.reshape(-1).to(torch.float64), b.reshape(-1).to(torch.float64)))


@OPTIMIZERS.register("newton")
class Newton(NewtonMethod):
    """The literal per-player Newton step on each player's own loss, damped, with Levenberg–Marquardt
    adaptation (Martens 2010, "Deep learning via Hessian-free optimization", §4.1, Alg. 1 without its
    CG backtracking):

        (B_i + λ_i I) p_i = −g_i  (``system: direct``)   or   (B_i² + λ_i I) p_i = −B_i g_i  (``normal``),
        θ_i ← θ_i + η_i p_i,

    B_i = ∂²f_i/∂θ_i² (``curvature: hessian``) or the Gauss–Newton matrix J_iᵀ(∇²_u f_i)J_i of the outputs the
    closure declares (``curvature: gauss-newton``; exact products only; see :class:`DeclaredLosses`: the GAN
    closure of the trainer declares none yet). With ``adapt_damping`` each player's λ_i follows
    :func:`levenberg_marquardt` from ρ_i = (f_i(θ_i + s_i, θ_{−i}) − f_i(θ)) / (g_iᵀs_i + ½ s_iᵀB_i s_i),
    s_i = η_i p_i, the other players held where they were (a model that predicts no decrease counts as
    ρ = −∞); the step is always taken and λ serves the next one. ``scheme``: ``simultaneous`` (every player's
    system at the same point) or ``alternating`` (one player after another in ``order``, ``reverse`` — the
    discriminator first in a GAN — or ``forward``, each at the point the previous ones left).

    Not a game method: on ``local-minimax`` (f = −3x² + 4xy − y², a strict local minimax that is not a local
    Nash equilibrium) the undamped step diverges for every η > 0 — spectral radius 1 + η(2/√3 − 1)
    simultaneous (2/√3 at η = 1), (T + √(T² − 4(1 − η)²))/2 with T = 2 − 2η + 4η²/3 alternating (4/3 at η = 1).

    Hyper-parameters: ``lr`` (η, 1.0, per player), ``damping`` (λ₀, 1.0, per player), ``adapt_damping`` (true),
    ``curvature`` (hessian), ``system`` (direct), ``krylov`` (cg; ``cr`` solves indefinite direct systems),
    ``tol`` (1e-3, relative residual norm), ``max_iter`` (10), ``scheme`` (simultaneous), ``order`` (reverse),
    ``hvp`` (exact | fd), ``fd_eps``, ``max_grad_norm``. State: each player's λ (``state["damping"]``).
    Cost per step and player: one gradient with graph, k products (direct; normal: 1 + 2k), and with
    ``adapt_damping`` one closure call (a forward pass, no gradient); Gauss–Newton: one more backward pass with
    graph per player, and each product three backward passes (one through the loss head only).
    :attr:`last_solve` holds, per player, the iterations, residual, damping used, ρ and the new damping.
    """

    #: fp16 with loss scaling is refused: on the contract game the damped per-player solves kept overflowing
    #: float16 at every scale from 2**16 down to 2**10, so no step would ever be applied
    supports_loss_scaling = False

    defaults: dict[str, Any] = {**SecondOrder.defaults, "lr": 1.0, "damping": 1.0, "adapt_damping": True,
                                "curvature": "hessian", "system": "direct", "krylov": "cg", "tol": 1e-3,
                                "max_iter": 10, "scheme": "simultaneous", "order": "reverse"}
    game_level = frozenset({"hvp", "fd_eps", "forward_mode", "curvature", "scheme", "order", *SOLVER_KEYS})

    def __init__(self, players, **hyper_parameters) -> None:
        super().__init__(players, **hyper_parameters)
        shared = self.shared
        shared["curvature"] = checks.choice("optim.curvature", shared["curvature"], ("hessian", "gauss-newton"),
                                            lower=True)
        shared["scheme"] = checks.choice("optim.scheme", shared["scheme"], ("simultaneous", "alternating"))
        shared["order"] = checks.choice("optim.order", shared["order"], ("reverse", "forward"))
        if shared["curvature"] == "gauss-newton" and shared["hvp"] != "exact":
            raise ConfigError("optim.curvature: gauss-newton takes exact products only (optim.hvp: exact)")

    @property
    def wants_outputs(self) -> bool:
        """Whether ``step`` uses the outputs a closure declares (:class:`DeclaredLosses`): Gauss–Newton curvature.
        A closure may skip that bookkeeping otherwise."""
        return self.shared["curvature"] == "gauss-newton"

    def dampings(self) -> list[float]:
        """Each player's current λ (``state["damping"]``, started at the ``damping`` hyper-parameter)."""
        return self.state.setdefault("damping", [float(hp["damping"]) for hp in self.hp])

    def _step(self, evaluate: Closure, active: list[int]) -> None:
        self.last_solve = {}
        if self.shared["scheme"] == "simultaneous":
            self._group_step(evaluate, list(active))
            return
        for i in reversed(active) if self.shared["order"] == "reverse" else active:
            self._group_step(evaluate, [i])

    def _group_step(self, evaluate: Closure, group: list[int]) -> None:
        losses = self.base_evaluation(evaluate)
        d = self.derivatives(evaluate, losses)
        for i in group:  # every gradient before any (fd) product
            d.prepare(i, [i])
        g = self.own_gradients(d, group)
        lam = self.dampings()
        steps: dict[int, Tensor] = {}
        predicted: dict[int, float] = {}
        for i in group:
            apply = (self.gauss_newton_operator(losses, i, i) if self.shared["curvature"] == "gauss-newton"
                     else self.hessian_operator(d, i, i))
            gi = flatten([t.detach() for t in g[i]])
            info: dict[str, Any] = {"damping": lam[i]}
            p, bp = self.solve(apply, -gi, lam[i], info)
            eta = float(self.hp[i]["lr"])
            steps[i] = eta * p
            predicted[i] = eta * _dot(gi, p) + 0.5 * eta**2 * _dot(p, bp)
            self.last_solve[i] = {k: info[k] for k in ("iterations", "residual", "converged", "products", "damping")}
        if self.shared["adapt_damping"]:
            for i in group:
                rho = self.reduction_ratio(evaluate, losses, i, steps[i], predicted[i])
                if rho is None and not self.last_solve[i]["converged"]:
                    rho = -math.inf  # no step: the solver met non-positive curvature at once
                lam[i] = levenberg_marquardt(lam[i], rho)
                self.last_solve[i].update(rho=rho, new_damping=lam[i])
        for i in group:
            self.add_to_params(i, unflatten(steps[i], self.players[i]))

    def reduction_ratio(self, evaluate: Closure, losses: list[Tensor], i: int, step: Tensor,
                        predicted: float) -> float | None:
        """ρ_i = (f_i(θ_i + s_i) − f_i(θ)) / (q(s_i) − q(0)); None for a zero step; −∞ when the model predicts
        no decrease (one closure call unless the step is zero)."""
        if not bool(torch.any(step != 0)):
            return None
        actual = self.loss_at(evaluate, {i: step}, i) - self.value(losses[i])
        if not predicted < 0.0:
            return -math.inf
        return actual / predicted
