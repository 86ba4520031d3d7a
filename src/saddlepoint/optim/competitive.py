"""Competitive gradient descent (CGD) and adaptive CGD (ACGD): two players, one linear solve per step.

Conventions (products, ``hvp``, ``forward_mode``, clipping, active players, cost counts) are those of
:mod:`.second_order`. One step:

1. the gradients at the base point, and the decision zero-sum / general-sum (:meth:`CGD.gradients`);
2. the step sizes η_x, η_y (:meth:`CGD.step_sizes`: the learning rates, or ACGD's adaptive ones);
3. the local game on flat vectors (:class:`LocalGame`) solved by :func:`solve_zero_sum` (CG or CR on the
   symmetric positive definite reduced system) or :func:`solve_general_sum` (GMRES on the block system);
4. both players move by the solution (Δx, Δy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .. import checks
from ..errors import ConfigError
from .base import OPTIMIZERS, Closure
from .derivatives import GameDerivatives, flatten, unflatten
from .krylov import cg, cr, gmres, warm_scale
from .second_order import SecondOrder

__all__ = ["ACGD", "CGD", "KrylovSettings", "LocalGame", "solve_general_sum", "solve_zero_sum"]


@dataclass(frozen=True)
class KrylovSettings:
    """The solver's hyper-parameters (see :class:`CGD`)."""

    tol: float
    atol: float
    max_iter: int
    restart: int
    krylov: str
    warm_scale: bool
    recover: str


class LocalGame:
    """One CGD step on flat vectors: players x = ``X`` and y = ``Y`` with gradients ``gx`` = ∇_x f and
    ``gy`` = ∇_y g, step sizes ``ex`` = η_x and ``ey`` = η_y (floats, or per-coordinate tensors) and their
    square roots, and the mixed products of the losses f = ``losses[0]``, g = ``losses[1]``."""

    def __init__(self, d: GameDerivatives, gx: Tensor, gy: Tensor, ex: Tensor | float, ey: Tensor | float) -> None:
        self.d, self.X, self.Y = d, d.players[0], d.players[1]
        self.gx, self.gy, self.ex, self.ey = gx, gy, ex, ey
        self.sx = ex**0.5 if isinstance(ex, float) else ex.sqrt()
        self.sy = ey**0.5 if isinstance(ey, float) else ey.sqrt()

    def d_xy(self, k: int, v: Tensor) -> Tensor:
        """D_xy f_k v = ∇_x(∇_y f_k · v): v in y-space, result in x-space."""
        return flatten(self.d.mixed(k, 0, 1, unflatten(v, self.Y)))

    def d_yx(self, k: int, u: Tensor) -> Tensor:
        """D_yx f_k u = ∇_y(∇_x f_k · u): u in x-space, result in y-space."""
        return flatten(self.d.mixed(k, 1, 0, unflatten(u, self.X)))


class ZeroSumOperator:
    """A = I + K Kᵀ, K = √η_x D √η_y with D = D_xy f = −D_xy g (from D's loss g). Each application
    remembers Dᵀ√η_x v (:attr:`last`), a by-product linear in v from which CG keeps Dᵀ√η_x u."""

    def __init__(self, game: LocalGame) -> None:
        self.game = game
        self.last: Tensor | None = None

    def D(self, v: Tensor) -> Tensor:  # D_xy f v = −∇_x(∇_y g · v), v in y-space
        return -self.game.d_xy(1, v)

    def DT(self, u: Tensor) -> Tensor:  # D_yx f u = −∇_y(∇_x g · u), u in x-space
        return -self.game.d_yx(1, u)

    def __call__(self, u: Tensor) -> Tensor:
        self.last = self.DT(self.game.sx * u)
        return u + self.game.sx * self.D(self.game.ey * self.last)

    def side(self) -> Tensor:
        assert self.last is not None
        return self.last


def _zero_sum_start(A: ZeroSumOperator, rhs: Tensor, warm: Tensor | None, settings: KrylovSettings,
                    info: dict[str, Any]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(x0, r0, t0)`` for a warm start from the previous solution (Nones for a cold start): r0 = b − A x0
    with A x0 = x0 + √η_x D η_y t0, t0 = Dᵀ√η_x x0 (2 products); with ``warm_scale`` the best multiple c·x0
    (A x0 is known: free)."""
    if warm is None or warm.shape != rhs.shape or not bool(torch.any(warm != 0)):
        return None, None, None
    x0 = warm
    t0 = A.DT(A.game.sx * x0)
    ax0 = x0 + A.game.sx * A.D(A.game.ey * t0)
    if settings.warm_scale:
        c = warm_scale(rhs, ax0)
        x0, t0, ax0 = c * x0, c * t0, c * ax0
        info["warm_scale"] = c
    return x0, rhs - ax0, t0


def solve_zero_sum(game: LocalGame, warm: Tensor | None, settings: KrylovSettings,
                   info: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    """``(Δx, Δy, u)`` for a zero-sum interaction: CG (or CR) on

        (I + K Kᵀ) u = −√η_x (∇_x f − D η_y ∇_y g),   Δx = √η_x u,   Δy = −η_y (∇_y g − Dᵀ Δx)

    with Dᵀ Δx = Dᵀ√η_x u from the solver's running by-product (``recover: incremental``, no product) or
    one fresh product (``recover: fresh``, its relative drift in ``info["recover_drift"]``)."""
    A = ZeroSumOperator(game)
    rhs = -game.sx * (game.gx - A.D(game.ey * game.gy))
    x0, r0, t0 = _zero_sum_start(A, rhs, warm, settings, info)
    solve = cr if settings.krylov == "cr" else cg
    u, _ = solve(A, rhs, x0, r0=r0, side=A.side, side0=t0, tol=settings.tol, atol=settings.atol,
                 max_iter=settings.max_iter, info=info)
    dx = game.sx * u
    tu = info.get("side")
    if tu is None:  # zero solution (no iteration from a zero start)
        tu = torch.zeros_like(game.gy)
    if settings.recover == "fresh":
        fresh = A.DT(dx)
        # diagnostics: how far the running product drifted from the fresh one
        info["recover_drift"] = float(torch.linalg.vector_norm(tu - fresh)) / max(
            float(torch.linalg.vector_norm(fresh)), 1e-300
        )
        tu = fresh
    dy = -game.ey * (game.gy - tu)
    return dx, dy, u


def solve_general_sum(game: LocalGame, warm: Tensor | None, settings: KrylovSettings,
                      info: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    """``(Δx, Δy, z)`` for a general-sum game: GMRES on the symmetrised block system

        [[I, √η_x D_xy f √η_y], [√η_y D_yx g √η_x, I]] z = −[√η_x ∇_x f; √η_y ∇_y g],
        (Δx, Δy) = (√η_x z_x, √η_y z_y)."""
    nx = game.gx.numel()
    sx, sy = game.sx, game.sy

    def matvec(z: Tensor) -> Tensor:
        u, w = z[:nx], z[nx:]
        return torch.cat([u + sx * game.d_xy(0, sy * w), w + sy * game.d_yx(1, sx * u)])

    rhs = -torch.cat([sx * game.gx, sy * game.gy])
    x0 = warm if warm is not None and warm.shape == rhs.shape else None
    z, _ = gmres(matvec, rhs, x0, scale_warm=settings.warm_scale, tol=settings.tol, atol=settings.atol,
                 restart=settings.restart, max_iter=settings.max_iter, info=info)
    return sx * z[:nx], sy * z[nx:], z


@OPTIMIZERS.register("cgd")
class CGD(SecondOrder):
    """Competitive gradient descent (Schäfer & Anandkumar 2019, "Competitive Gradient Descent", §2):
    the Nash equilibrium of the regularised bilinear local game (their Theorem 2.1 / eq. (4),
    Algorithm 1). Two players, x = ``players[0]`` minimising f = ``losses[0]`` and y = ``players[1]``
    minimising g = ``losses[1]``; with (per-player) step sizes η_x, η_y the update solves

        [ I          η_x D_xy f ] [Δx]     [η_x ∇_x f]
        [ η_y D_yx g  I         ] [Δy] = − [η_y ∇_y g]

    **Zero-sum interaction** (f + g separable, ∂²(f+g)/∂x∂y = 0: e.g. the minimax and WGAN losses,
    or g = −f): with D = D_xy f = −D_xy g, eliminating Δy gives the SPD system of the paper's zero-sum
    form, solved by conjugate gradients in the symmetrised variable u = Δx/√η_x:

        (I + K Kᵀ) u = −√η_x (∇_x f − D η_y ∇_y g),   K = √η_x D √η_y,   Δx = √η_x u,
        Δy = −η_y (∇_y g − Dᵀ Δx)                      (no second solve, and no further product:
                                                        Dᵀ Δx = Dᵀ√η_x u is updated along CG's iterates
                                                        from the products its operator computes anyway).

    For g = −f this is Δx = −η(I + η² D_xy D_yx)⁻¹(∇_x f + η D_xy ∇_y f). The mixed derivatives D are
    taken from g = ``losses[1]`` (D = −D_xy g; in a GAN the discriminator's loss, the value function —
    the authors' CGDs package does the same), the gradients from each player's own loss.

    **General sum** (``zero_sum: false``, or detected): GMRES on the symmetrised block system
    [[I, √η_x D_xy f √η_y], [√η_y D_yx g √η_x, I]] [u; w] = −[√η_x ∇_x f; √η_y ∇_y g].
    The non-saturating GAN loss is general-sum and takes this route.

    ``recover``: ``incremental`` (default) takes Dᵀ Δx from CG's running update
    Dᵀ√η_x u_{k+1} = Dᵀ√η_x u_k + α_k Dᵀ√η_x p_k (exact in exact arithmetic; in floating point it
    differs from a fresh product by rounding only, far below any CG tolerance; ``last_solve`` reports the
    drift with ``fresh``); ``fresh`` recomputes it with one more product.

    ``zero_sum``: ``auto`` (default) decides numerically at the first step with non-zero interaction by
    comparing D_yx f·r with −D_yx g·r for a fixed random r (2 products, once; relative tolerance
    10·√eps of the dtype); the decision is kept in the state (``state_dict``). ``true`` asserts it
    (with a general-sum g this is the zero-sum approximation built on D's loss), ``false`` forces GMRES.

    Hyper-parameters: ``lr`` (1e-2, per player), ``zero_sum`` (auto), ``tol`` (1e-5), ``atol`` (0.0),
    ``max_iter`` (100), ``restart`` (GMRES, 20), ``warm_start`` (false: every solve starts from 0;
    true: from the previous solution, kept in the state), ``warm_scale`` (true: from the multiple c·u₀
    of the previous solution u₀ that minimises the initial residual, c = ⟨b, A u₀⟩/‖A u₀‖², free since
    A u₀ is computed for the residual anyway; never a larger initial residual than a cold start or
    than u₀ itself), ``krylov`` (zero-sum solver: ``cg``, or ``cr``, conjugate residuals — the
    residual-norm-minimising iterate, so never more iterations than CG at the same residual-norm
    tolerance in exact arithmetic), ``recover`` (incremental),
    ``forward_mode`` (true: D_yx·u by a forward pass through G where the closure declares G's samples, see the
    module doc), ``hvp``, ``fd_eps``, ``max_grad_norm``.

    Stopping rule: the residual NORM, ‖b − Ax‖ ≤ max(tol·‖b‖, atol), or ``max_iter`` operator
    applications (diagnostics in :attr:`last_solve`). The authors' CGDs package instead compares the
    SQUARED residual, ‖r‖² < tol·‖r₀‖² (r₀ the initial, possibly warm-started residual; ‖b‖² in some
    versions) or ‖r‖² < atol: their defaults tol = 1e-10, atol = 1e-16 correspond to our tol ≈ 1e-5,
    atol ≈ 1e-8, and their "tol 1e-4" to our tol ≈ 1e-2.

    Products per step, zero-sum: 1 (right-hand side D η_y ∇_y g) + 2 per CG iteration [+ 2 for a
    warm-start residual: Dᵀ√η_x u₀, then D η_y of it] = 1 + 2k [3 + 2k] (``recover: fresh``: + 1).
    The warm-start residual cannot share the right-hand side's product (r₀ = b − A u₀ is linear in
    both, one D product would do), because the stopping threshold tol·‖b‖ needs b on its own.
    General-sum: 2 per GMRES iteration [+ 2 per restart / warm start]. Gradients: 2 backward passes
    (one with graph per loss needed).
    """

    mixes_players = True
    defaults = {
        **SecondOrder.defaults,
        "forward_mode": True,
        "zero_sum": "auto",
        "tol": 1e-5,
        "atol": 0.0,
        "max_iter": 100,
        "restart": 20,
        "warm_start": False,
        "recover": "incremental",
        "krylov": "cg",
        "warm_scale": True,
    }
    game_level = frozenset({"hvp", "fd_eps", "forward_mode", "zero_sum", "tol", "atol", "max_iter", "restart",
                            "warm_start", "warm_scale", "recover", "krylov"})

    def __init__(self, players, **hyper_parameters) -> None:
        zs = hyper_parameters.get("zero_sum")
        if isinstance(zs, bool):  # YAML/CLI booleans; stored as the names "true"/"false"
            hyper_parameters["zero_sum"] = "true" if zs else "false"
        super().__init__(players, **hyper_parameters)
        if len(self.players) != 2:
            raise ConfigError(
                f"optim.name: {type(self).__name__.lower()} is a two-player method, got {len(self.players)} players"
            )
        shared = self.shared
        shared["zero_sum"] = checks.choice("optim.zero_sum", shared["zero_sum"], ("auto", "true", "false"), lower=True)
        shared["warm_start"] = checks.boolean("optim.warm_start", shared["warm_start"])
        shared["warm_scale"] = checks.boolean("optim.warm_scale", shared["warm_scale"])
        shared["recover"] = checks.choice("optim.recover", shared["recover"], ("incremental", "fresh"), lower=True)
        shared["krylov"] = checks.choice("optim.krylov", shared["krylov"], ("cg", "cr"), lower=True)
        for key in ("tol", "atol"):
            checks.non_negative(f"optim.{key}", shared[key])
        for key in ("max_iter", "restart"):
            val = shared[key]
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise checks.fail(f"optim.{key}", "a positive integer", val)

    def settings(self) -> KrylovSettings:
        shared = self.shared
        return KrylovSettings(tol=float(shared["tol"]), atol=float(shared["atol"]), max_iter=int(shared["max_iter"]),
                              restart=int(shared["restart"]), krylov=shared["krylov"],
                              warm_scale=bool(shared["warm_scale"]), recover=shared["recover"])

    # ------------------------------------------------------------------ step sizes
    def step_sizes(self, grads: dict[int, list[Tensor]]) -> dict[int, Tensor | float]:
        """η_i per player: a float (CGD) or a flat tensor of per-coordinate steps (ACGD)."""
        return {i: float(self.hp[i]["lr"]) for i in grads}

    # ------------------------------------------------------------------ zero-sum detection
    def _decided_zero_sum(self) -> bool | None:
        setting = self.shared["zero_sum"]
        if setting != "auto":
            return setting == "true"
        if "zero_sum" in self.state:
            return bool(self.state["zero_sum"])
        return None

    def _detect_zero_sum(self, d: GameDerivatives) -> bool:
        x = self.players[0]
        gen = torch.Generator().manual_seed(0)
        r = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in x]
        pf, pg = d.mixed_many([(0, 1), (1, 1)], 0, r)  # D_yx f r, D_yx g r
        nf = float(torch.linalg.vector_norm(flatten(pf)))
        ng = float(torch.linalg.vector_norm(flatten(pg)))
        if nf == 0.0 and ng == 0.0:
            return True  # no interaction here: both formulations give the same step; decide later
        diff = float(torch.linalg.vector_norm(flatten(pf) + flatten(pg)))
        tol = 10 * float(torch.finfo(x[0].dtype).eps) ** 0.5
        self.state["zero_sum"] = diff <= tol * max(nf, ng)
        return bool(self.state["zero_sum"])

    # ------------------------------------------------------------------ the step
    def gradients(self, d: GameDerivatives) -> tuple[dict[int, list[Tensor]], bool]:
        """Both players' gradients (clipped) and whether the interaction is zero-sum. Every gradient is taken
        at the base point before any product (fd products perturb the parameters in place)."""
        decided = self._decided_zero_sum()
        if decided:
            d.prepare(1, [0, 1])  # ∇g with graph: both mixed products come from D's loss
            d.prepare(0, [0], graph=False)
        else:  # general sum, or still undecided
            d.prepare(0, [0, 1])
            d.prepare(1, [0, 1])
        g = self.own_gradients(d, [0, 1])
        zero_sum = decided if decided is not None else self._detect_zero_sum(d)
        return g, zero_sum

    def _step(self, evaluate: Closure, active: list[int]) -> None:
        losses = self.first_evaluation(evaluate)
        d = self.derivatives(evaluate, losses)
        if len(set(active)) < 2:
            self._own_gradient_step(d, active)
            return
        g, zero_sum = self.gradients(d)
        eta = self.step_sizes(g)
        game = LocalGame(d, flatten(g[0]), flatten(g[1]), eta[0], eta[1])
        warm = self.state.get("warm") if self.shared["warm_start"] else None
        info: dict[str, Any] = {}
        solve = solve_zero_sum if zero_sum else solve_general_sum
        dx, dy, solution = solve(game, warm, self.settings(), info)
        if self.shared["warm_start"]:
            self.state["warm"] = solution.detach().clone()
        self.last_solve = {
            "iterations": info.get("iterations", 0),
            "residual": info.get("residual", 0.0),
            "converged": info.get("converged", True),
            "zero_sum": zero_sum,
        }
        for key in ("recover_drift", "warm_scale"):
            if key in info:
                self.last_solve[key] = info[key]
        self.add_to_params(0, unflatten(dx.detach(), game.X))
        self.add_to_params(1, unflatten(dy.detach(), game.Y))

    def _own_gradient_step(self, d: GameDerivatives, active: list[int]) -> None:
        """One active player: its own (preconditioned) gradient step, the CGD update when the opponent stands
        still."""
        g = self.own_gradients(d, list(active))
        eta = self.step_sizes(g)
        for i in active:
            self.add_to_params(i, [-(e * gi) for gi, e in zip(g[i], self._per_tensor(eta[i], i), strict=True)])
        self.last_solve = {"iterations": 0, "residual": 0.0, "converged": True}

    def _per_tensor(self, eta: Tensor | float, i: int) -> list[Tensor | float]:
        if isinstance(eta, float):
            return [eta] * len(self.players[i])
        return unflatten(eta, self.players[i])


@OPTIMIZERS.register("acgd")
class ACGD(CGD):
    """Adaptive CGD (Schäfer, Zheng & Anandkumar 2020, "Implicit competitive regularization in
    GANs", §5 and their ACGD algorithm): CGD with RMSprop-style per-coordinate step sizes

        v_i ← β v_i + (1 − β) g_i²,   η_i = lr_i · √(1 − βᵗ) / (√v_i + ε)   (t: the player's step count)

    in the symmetrised CGD system of :class:`CGD` (√η as the diagonal preconditioner), solved by CG
    (zero-sum interaction) or GMRES (general sum) warm-started from the previous step's solution,
    which is kept in the state (``state_dict()['state']['warm']``) together with each player's ``v``
    and ``t``.

    Hyper-parameters: ``lr`` (1e-3, per player), ``beta`` (0.99), ``eps`` (1e-8), ``tol`` (1e-5,
    relative residual norm, see :class:`CGD`), ``atol`` (0.0), ``max_iter`` (100), ``restart`` (20),
    ``warm_start`` (true), ``warm_scale`` (true), ``krylov`` (cg), ``recover`` (incremental),
    ``zero_sum`` (auto), ``forward_mode`` (true), ``hvp``, ``fd_eps``, ``max_grad_norm`` (see :class:`CGD`).
    With minibatch noise the previous solution can be a poor start (its residual larger than ‖b‖, so that
    a cold start needs no more iterations and saves the 2 warm-start products): iteration counts and
    timings per setting are in docs/optimizers.md. The first, cold step (η = lr/|g| per coordinate,
    badly conditioned) may run to ``max_iter``. ``hvp: fd`` is not recommended in float32 (the CG
    residual can stagnate on the first steps).
    Products per step (zero-sum): 1 (right-hand side) + 2 (warm-start residual) + 2k = 3 + 2k
    ≤ 5 + 2k for k CG iterations (the other player's step comes from CG's running product, see
    ``recover`` in :class:`CGD`; the CGDs package spends 2 + 2 + 2k + 1).
    """

    defaults = {**CGD.defaults, "lr": 1e-3, "beta": 0.99, "eps": 1e-8, "warm_start": True}

    def step_sizes(self, grads):
        eta: dict[int, Tensor | float] = {}
        for i, g in grads.items():
            st = self.player_state(i)
            flat = flatten(g).detach()
            if "v" not in st or st["v"].shape != flat.shape:
                st["v"] = torch.zeros_like(flat)
                st["t"] = 0
            beta, eps = float(self.hp[i]["beta"]), float(self.hp[i]["eps"])
            st["t"] += 1
            st["v"].mul_(beta).addcmul_(flat, flat, value=1 - beta)
            eta[i] = self.hp[i]["lr"] * (1 - beta ** st["t"]) ** 0.5 / (st["v"].sqrt() + eps)
        return eta
