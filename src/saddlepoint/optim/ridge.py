"""Newton-type methods for two-player minimax games: Follow-the-Ridge, GDN and Complete Newton.

The leader x = ``players[0]`` (in a GAN the generator) minimises f = ``losses[0]``; the follower
y = ``players[1]`` (the discriminator) minimises its OWN loss g = ``losses[1]`` (g = −f in a zero-sum game).
F_ab and G_ab are the blocks of the second derivatives of f and g. The follower's best response y*(x),
∇_y g(x, y*(x)) = 0 — the *ridge* — moves with the leader as dy*/dx = −G_yy⁻¹ G_yx, so a leader's step Δx is
followed by the ridge correction −G_yy⁻¹ G_yx Δx. In the papers' convention (y maximises f, H = ∇²f) this is
+H_yy⁻¹ H_yx Δx, since G_yy = −H_yy and G_yx = −H_yx; the general-sum form keeps D's own loss throughout.

* ``follow-ridge`` (Wang, Zhang & Ba, ICLR 2020, "On solving minimax optimization locally: a follow-the-ridge
  approach", eq. (4) and Alg. 1; preconditioned as in their §6 GAN runs):
  Δx = T_x(∇_x f), Δy = T_y(∇_y g) − G_yy⁻¹ G_yx Δx; with T = −η (``base: sgd``) and g = −f this is their
  x ← x − η_x ∇_x f, y ← y + η_y ∇_y f + η_x H_yy⁻¹ H_yx ∇_x f. Near a fixed point the iteration map is
  block-triangular in ridge coordinates with eigenvalues {1 − η_x S} ∪ {1 + η_y H_yy} (their Theorem 2; in our
  signs {1 − η_y G_yy}), S = H_xx − H_xy H_yy⁻¹ H_yx the Schur complement: real, so no rotation.
* ``gdn`` (Zhang, Wu, Poupart & Yu 2020, "Newton-type methods for minimax optimization", GDN): the leader's
  base step, the follower a Newton step on its own Hessian at the point the leader is going to:
  Δx = T_x(∇_x f), Δy = −G_yy⁻¹(η_y ∇_y g + G_yx Δx) (η_y = 1: Newton). Eigenvalues {1 − η_x S} ∪ {1 − η_y}: the
  leader contracts at |1 − η_x S| (from the second step on a quadratic game, the follower is on the ridge).
* ``complete-newton`` (same paper, CN): the leader also takes a Newton step, on the Schur complement,
  Δx = −η_x S⁻¹ ∇_x f, S = F_xx − F_xy G_yy⁻¹ G_yx; S⁻¹∇_x f is the x-block of the solution of the full system
  M z = [∇_x f; 0], M = [[F_xx, F_xy], [G_yx, G_yy]] (the game Jacobian; the Hessian of f up to the sign of its
  y-row when g = −f); the follower as in GDN. On a quadratic game with η = 1 it lands exactly on the
  equilibrium in two iterations (the first puts y on the ridge of the new x, where ∇_x f = S x).

Solves (hyper-parameters of :class:`~saddlepoint.optim.newton.NewtonMethod`): G_yy⁻¹ by ``krylov`` (cg | cr) on
``system: normal`` — the damped normal equations (G_yy² + λI)v = G_yy b, as the Follow-the-Ridge code does —
or ``direct`` (G_yy + λI)v = b; CN's full system by GMRES (``direct``, (M + λI)z) or by ``krylov`` on
(MᵀM + λI)z = Mᵀb (``normal``). The mixed term G_yx Δx (``mixed``): ``product`` — one mixed product, exact or
central finite differences as ``hvp`` — or ``step``: the forward difference of D's gradient along G's step,
∇_y g(x + Δx, y) − ∇_y g(x, y), as in the authors' GAN code (one closure call and one gradient; exact on
quadratic games). ``adapt_damping``: the Follow-the-Ridge code's rule, for the follower's solve (λ ≤ λ₀ =
``damping``): with the residual the follower's move leaves in D's gradient, predicted by the linear model
(r_m = b + G_yy c) and measured at (x + Δx, y + c) (r_t, one closure call and one gradient), against the
residual r₀ = b of no move, q = 1 − ‖r_m‖²/‖r₀‖², t = 1 − ‖r_t‖²/‖r₀‖², ρ = t/q: ρ < 0 or t < 0 (or q ≤ 0)
drops the move c for this step and doubles λ; ρ < ½: λ ×1.1; ρ > 0.95: λ ×0.9 (≥ 1e-8). CN's leader uses the
same λ, without its own check.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import checks
from ..errors import ConfigError
from .base import OPTIMIZERS, Closure
from .derivatives import GameDerivatives, flatten, unflatten
from .krylov import cg, cr, gmres
from .newton import SOLVER_KEYS, NewtonMethod
from .rules import RULES, UpdateRule, build_rule, rule_names
from .second_order import SecondOrder

__all__ = ["CompleteNewton", "FollowRidge", "GDN", "RidgeMethod"]


class RidgeMethod(NewtonMethod):
    """Two players, leader 0 and follower 1: a leader's step Δx, then the follower's step with the ridge
    correction (module doc). Subclasses choose the leader's step and whether the follower takes a Newton step."""

    mixes_players = True  # the mixed product G_yx Δx may go through G's declared samples (forward_mode)
    #: the leader steps with the base rule (False: a Newton step on the Schur complement)
    leader_base = True
    #: the follower takes a Newton step (False: the base rule's step plus the ridge correction)
    follower_newton = False
    #: (leader, follower) step sizes when ``lr`` is not given (None: the base rule's default)
    default_lr: tuple[float | None, float | None] = (None, None)
    default_base = "sgd"
    solver_defaults: dict[str, Any] = {"damping": 1.0, "adapt_damping": True, "system": "normal", "krylov": "cg",
                                       "tol": 1e-4, "max_iter": 5, "mixed": "product"}
    extra_defaults: dict[str, Any] = {}

    @classmethod
    def uses_base(cls) -> bool:
        return cls.leader_base or not cls.follower_newton

    @classmethod
    def defaults_for(cls, base: str | None) -> dict[str, Any]:
        out = {**SecondOrder.defaults, **cls.solver_defaults, **cls.extra_defaults}
        if cls.uses_base():
            out.update({**RULES.get(base or cls.default_base).defaults, "base": cls.default_base})
        else:
            out["lr"] = 1.0
        return out

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = cls.defaults_for(None)
        keys = {"hvp", "fd_eps", "forward_mode", "damping", "mixed", *SOLVER_KEYS, *cls.extra_defaults}
        cls.game_level = frozenset(keys | ({"base"} if cls.uses_base() else set()))

    def __init__(self, players, **hyper_parameters: Any) -> None:
        players = list(players)
        name = type(self).__name__
        if len(players) != 2:
            raise ConfigError(f"optim.name: {name} is a two-player (leader, follower) method, got {len(players)} "
                              "players")
        self.transform: UpdateRule | None = None
        if self.uses_base():
            self.transform = build_rule(hyper_parameters.get("base", self.default_base), look_ahead=False)
        # instance attribute: the base class validates the given hyper-parameters against it
        self.defaults = self.defaults_for(hyper_parameters.get("base") if self.uses_base() else None)
        if "lr" not in hyper_parameters and any(lr is not None for lr in self.default_lr):
            rule_lr = self.defaults["lr"]
            hyper_parameters["lr"] = [rule_lr if lr is None else lr for lr in self.default_lr]
        super().__init__(players, **hyper_parameters)
        self.shared["mixed"] = checks.choice("optim.mixed", self.shared["mixed"], ("product", "step"), lower=True)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if self.uses_base():
            base = self.shared.get("base", self.default_base)
            if base not in rule_names(look_ahead=False):
                raise ConfigError(f"optimizer state: unknown base rule {base!r}")

    # ------------------------------------------------------------------ pieces
    def damping(self) -> float:
        """The follower's current λ (``state["damping"]``, started at ``damping``)."""
        return float(self.state.setdefault("damping", float(self.shared["damping"])))

    def base_step(self, i: int, grads: list[Tensor]) -> Tensor:
        """T_i(g) as a flat tensor (advances the rule's state, kept under ``state["players"][i]["base"]``)."""
        assert self.transform is not None
        state = self.player_state(i).setdefault("base", {})
        return flatten([t.detach() for t in self.transform.update(grads, self.players[i], state, self.hp[i])])

    def prepare(self, d: GameDerivatives) -> None:
        """Every gradient the step needs, at the base point, before any product (fd products and the shifted
        evaluations move the parameters): ∇g with graph over both players when G_yx Δx is a product through G's
        backward graph; the full gradients of both losses for CN's leader."""
        if d.mode != "exact":
            d.prepare(0, [0])
            d.prepare(1, [1])
            return
        through_g = self.shared["mixed"] == "product" and 0 not in d.pushforward
        if not self.leader_base:
            d.prepare(0, [0, 1])
            d.prepare(1, [0, 1])
            return
        d.prepare(0, [0], graph=False)
        d.prepare(1, [0, 1] if through_g else [1])

    def leader_step(self, d: GameDerivatives, g: list[Tensor]) -> Tensor:
        """Δx (flat): the base rule's step (FTR, GDN)."""
        return self.base_step(0, g)

    def ridge_term(self, evaluate: Closure, d: GameDerivatives, dx: Tensor, gy: Tensor) -> Tensor:
        """G_yx Δx: a mixed product (``mixed: product``) or ∇_y g(x + Δx, y) − ∇_y g(x, y) (``step``)."""
        if self.shared["mixed"] == "step":
            return self.gradient_at(evaluate, {0: dx}, 1, 1) - gy
        return flatten([t.detach() for t in d.mixed(1, 1, 0, unflatten(dx, self.players[0]))])

    # ------------------------------------------------------------------ the step
    def _step(self, evaluate: Closure, active: list[int]) -> None:
        losses = self.base_evaluation(evaluate)
        d = self.derivatives(evaluate, losses)
        self.prepare(d)
        g = self.own_gradients(d, [0, 1])
        self.last_solve = {}
        dx = self.leader_step(d, g[0]) if 0 in active else None
        dy = self.follower_step(evaluate, d, g[1], dx) if 1 in active else None
        if dx is not None:
            self.add_to_params(0, unflatten(dx, self.players[0]))
        if dy is not None:
            self.add_to_params(1, unflatten(dy, self.players[1]))

    def follower_step(self, evaluate: Closure, d: GameDerivatives, g: list[Tensor], dx: Tensor | None) -> Tensor:
        """Δy (flat): FTR T_y(∇_y g) − G_yy⁻¹G_yx Δx; GDN/CN −G_yy⁻¹(η_y ∇_y g + G_yx Δx)."""
        gy = flatten([t.detach() for t in g])
        eta = float(self.hp[1]["lr"])
        base = None if self.follower_newton else self.base_step(1, g)
        desired = -eta * gy if self.follower_newton else torch.zeros_like(gy)  # the change of ∇_y g aimed at
        moved = dx is not None and bool(torch.any(dx != 0))
        rhs = (self.ridge_term(evaluate, d, dx, gy) if moved else torch.zeros_like(gy)) - desired
        lam = self.damping()
        info: dict[str, Any] = {"damping": lam}
        v, hv = self.solve(self.hessian_operator(d, 1, 1), rhs, lam, info)
        c, hc = -v, -hv
        accepted = True
        if self.shared["adapt_damping"] and bool(torch.any(rhs != 0)):
            shifts = {1: c, **({0: dx} if moved and dx is not None else {})}
            measured = self.gradient_at(evaluate, shifts, 1, 1) - gy
            accepted = self.adapt(rhs, rhs + hc, measured - desired, info)
        if not accepted:
            c = torch.zeros_like(c)
        self.last_solve["follower"] = {k: info[k] for k in ("iterations", "residual", "converged", "products",
                                                            "damping") if k in info}
        self.last_solve["follower"].update({k: info[k] for k in ("ratio", "new_damping") if k in info},
                                           accepted=accepted)
        return c if base is None else base + c

    def adapt(self, reference: Tensor, model: Tensor, measured: Tensor, info: dict[str, Any]) -> bool:
        """The Follow-the-Ridge code's damping rule (module doc) from the residuals of no move (``reference``),
        of the linear model (``model``) and measured (``measured``); returns whether the move is kept."""
        ref = float(torch.sum(reference.double() ** 2))
        if not ref > 0.0:  # underflow: nothing to judge
            return True
        q = (ref - float(torch.sum(model.double() ** 2))) / ref
        t = (ref - float(torch.sum(measured.double() ** 2))) / ref
        lam = self.damping()
        rho = t / q if q > 0 else -1.0
        keep = not (rho < 0 or t < 0)
        if not keep:
            lam *= 2.0
        elif rho < 0.5:
            lam *= 1.1
        elif rho > 0.95:
            lam = max(1e-8, lam * 0.9)
        lam = min(lam, float(self.shared["damping"]))
        self.state["damping"] = lam
        info.update(ratio=rho, new_damping=lam)
        return keep


@OPTIMIZERS.register("follow-ridge")
class FollowRidge(RidgeMethod):
    """Follow-the-Ridge (Wang, Zhang & Ba, ICLR 2020, eq. (4) / Alg. 1; general sum with D's own loss, see the
    module doc): Δx = T_x(∇_x f), Δy = T_y(∇_y g) − G_yy⁻¹ G_yx Δx, i.e. for g = −f and ``base: sgd``

        x ← x − η_x ∇_x f,   y ← y + η_y ∇_y f + η_x H_yy⁻¹ H_yx ∇_x f.

    ``base`` (sgd; any rule that takes its gradient at θ: ``rmsprop``/``adam`` precondition both players as in
    the paper's GAN runs, the correction then follows the preconditioned Δx). Iteration map at a fixed point:
    eigenvalues {1 − η_x S} ∪ {1 + η_y H_yy} (``base: sgd``), S = H_xx − H_xy H_yy⁻¹ H_yx; it converges to, and
    only to, strict local minimax points (repelled from ``non-minimax``, to which simultaneous GDA converges).

    Hyper-parameters: ``lr`` (the base rule's default, per player) with the rule's own, ``base`` (sgd),
    ``damping`` (λ₀, 1.0), ``adapt_damping`` (true), ``system`` (normal), ``krylov`` (cg), ``tol`` (1e-4),
    ``max_iter`` (5: the authors' GAN setting), ``mixed`` (product), ``hvp``, ``fd_eps``, ``forward_mode`` (false),
    ``max_grad_norm``. Cost per step: 1 closure; ∇_x f, and ∇g with graph (over both players for a product
    through G); products 1 (G_yx Δx; ``mixed: step``: a closure and a gradient instead) + 1 + 2k (normal) or k
    (direct) for k Krylov iterations; ``adapt_damping``: 1 closure and 1 gradient.
    """


@OPTIMIZERS.register("gdn")
class GDN(RidgeMethod):
    """Gradient descent–Newton (Zhang, Wu, Poupart & Yu 2020, "Newton-type methods for minimax optimization",
    GDN; their code solves the follower's system with CG on the normal equations): the leader's base step, the
    follower's Newton step on its own Hessian along the ridge,

        Δx = T_x(∇_x f),   Δy = −G_yy⁻¹ (η_y ∇_y g + G_yx Δx)

    (for g = −f: y ← y − H_yy⁻¹∇_y f + H_yy⁻¹ H_yx Δx; η_y = 1 the full Newton step). Iteration map:
    {1 − η_x S} ∪ {1 − η_y} (``base: sgd``): the leader contracts at |1 − η_x S|, the follower is on the ridge
    after one step (η_y = 1, exact solves). Hyper-parameters as :class:`FollowRidge`, but ``lr`` defaults to
    [the base rule's, 1.0] (leader, follower): a single value sets both. Cost: as Follow-the-Ridge without the
    follower's base step (the right-hand side η_y ∇_y g + G_yx Δx is never zero, so the solve always runs).
    """

    follower_newton = True
    default_lr = (None, 1.0)


@OPTIMIZERS.register("complete-newton")
class CompleteNewton(RidgeMethod):
    """Complete Newton (Zhang, Wu, Poupart & Yu 2020, CN): Newton steps for both players,

        Δx = −η_x S⁻¹ ∇_x f,   S = F_xx − F_xy G_yy⁻¹ G_yx,       Δy = −G_yy⁻¹ (η_y ∇_y g + G_yx Δx),

    S⁻¹∇_x f as the x-block z_x of M z = [∇_x f; 0], M = [[F_xx, F_xy], [G_yx, G_yy]] (for g = −f the Hessian of
    f with its y-row negated: S the paper's Schur complement H_xx − H_xy H_yy⁻¹ H_yx). Solved by GMRES on
    (M + λI)z (``system: direct``, ``restart``) or by ``krylov`` on (MᵀM + λI)z = Mᵀ[∇_x f; 0] (``normal``).
    With η = 1 and exact solves a quadratic game is solved exactly in two iterations. In a general-sum game
    this S drops the total-derivative terms through ∇_y f (zero when g = −f and y is on the ridge).

    Hyper-parameters: ``lr`` (1.0, per player), ``restart`` (20), and those of :class:`FollowRidge` except
    ``base``. Cost: the full gradients of both losses with graph; per GMRES iteration 2 products (M·v, one per
    player; fd: 1), normal equations 3 (MᵀM·v; fd: 3); then the follower's solve as GDN.
    """

    leader_base = False
    follower_newton = True
    default_lr = (1.0, 1.0)
    extra_defaults = {"restart": 20}

    def __init__(self, players, **hyper_parameters: Any) -> None:
        super().__init__(players, **hyper_parameters)
        self.shared["restart"] = checks.positive_int("optim.restart", self.shared["restart"])

    def leader_step(self, d: GameDerivatives, g: list[Tensor]) -> Tensor:
        X, Y = self.players
        gx = flatten([t.detach() for t in g])
        nx = gx.numel()

        def split(z: Tensor) -> list[list[Tensor]]:
            return [unflatten(z[:nx], X), unflatten(z[nx:], Y)]

        def jacobian(z: Tensor) -> Tensor:  # M z = ((Jz)_x, (Jz)_y)
            return flatten([t.detach() for part in d.field_jvp(split(z)) for t in part])

        def transposed(z: Tensor) -> Tensor:  # Mᵀ z
            return flatten([t.detach() for part in d.field_vjp(split(z)) for t in part])

        ny = sum(p.numel() for p in Y)
        rhs = torch.cat([gx, torch.zeros(ny, dtype=gx.dtype, device=gx.device)])
        lam = self.damping()
        s = self.shared
        info: dict[str, Any] = {"damping": lam}
        if s["system"] == "direct":
            z, _ = gmres(lambda v: jacobian(v) + lam * v, rhs, tol=float(s["tol"]), max_iter=int(s["max_iter"]),
                         restart=int(s["restart"]), info=info)
        else:
            solve = cr if s["krylov"] == "cr" else cg
            z, _ = solve(lambda v: transposed(jacobian(v)) + lam * v, transposed(rhs), tol=float(s["tol"]),
                         max_iter=int(s["max_iter"]), info=info)
        self.last_solve["leader"] = {k: info[k] for k in ("iterations", "residual", "converged", "damping")
                                     if k in info}
        return -float(self.hp[0]["lr"]) * z[:nx]

