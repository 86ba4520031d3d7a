"""Second-order game optimizers: consensus optimization, SGA, CGD and ACGD.

Conventions shared by every method here (see :mod:`saddlepoint.optim.linalg` for the products):

* Player i minimises ``losses[i]``; ξ = (∇_{θ_i} f_i)_i is the game's vector field and
  J = ∂ξ/∂θ its Jacobian (the "game Hessian").
* ``hvp`` (game-level, ``exact`` | ``fd``, default ``exact``) selects double backpropagation or
  central finite differences for every second-derivative product; ``fd_eps`` is the relative
  finite-difference step (default machine_eps^(1/3)). In exact mode the losses returned by the closure
  must be twice differentiable with their graph intact: no ``.detach()`` between a player's parameters
  and another player's loss where the interaction matters (a GAN's D loss must see G's samples
  undetached), no ``torch.no_grad``; penalties that take input gradients must use
  ``create_graph=True`` (the project's penalties do).
* ``max_grad_norm`` clips each player's gradient ξ_i (norm recorded in ``last_grad_norms``) before it
  enters the update; the second-derivative products themselves are never clipped.
* Only the players in ``active`` (``step(closure, players=...)``) move. Consensus and SGA still use the
  whole field; CGD/ACGD with a single active player reduce to the player's own (preconditioned)
  gradient step — the CGD update when the opponent stands still.
* ``forward_mode`` (game-level; default true for CGD and ACGD, the methods it serves): in exact mode, when
  the closure declares that a player reaches the losses only through one tensor (the trainer's closure
  declares the generator's samples, :class:`~saddlepoint.optim.linalg.Pushforward`), the mixed products that
  differentiate through that player (D_yx·u in a GAN) use a forward pass of the tangent through its network
  (a tangent-only pass over the recorded layers when the network is a chain of standard layers,
  :mod:`~saddlepoint.optim.tangents`; ``torch.func.jvp`` otherwise) instead of a second backward pass through
  its backward graph: the same numbers (to rounding), 0.55 (chain) or 0.77 (jvp) instead of 0.95 gradients per
  product on DCGAN-28. Consensus and SGA take no such products. Ignored for closures that declare nothing,
  in ``fd`` mode, and under autocast.
* ``counts["hvp"]`` counts second-derivative products, ``counts["grad"]`` backward passes of a loss.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import OPTIMIZERS, Closure, GameOptimizer
from .first_order import TRANSFORMS, Transform
from .linalg import GameDerivatives, Pushforward, cg, cr, flatten, gmres, unflatten, warm_scale

_BASES = ("sgd", "rmsprop", "adam")


def _truthy(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"optim.{key}: expected true or false, got {value!r}")


class SecondOrder(GameOptimizer):
    """Shared machinery: the ``hvp``/``fd_eps`` settings and the per-step :class:`GameDerivatives`.

    Finite-difference products evaluate the closure at perturbed parameters; so that the registered
    buffers (BatchNorm statistics) hold the update of the evaluation at the current point — as in
    exact mode — they are put back to their values after the first evaluation when the step ends.
    """

    defaults: dict[str, Any] = {**GameOptimizer.defaults, "lr": 1e-2, "hvp": "exact", "fd_eps": None,
                                "forward_mode": False}
    game_level = frozenset({"hvp", "fd_eps", "forward_mode"})

    def __init__(self, players, **hyper_parameters) -> None:
        super().__init__(players, **hyper_parameters)
        if self.shared["hvp"] not in ("exact", "fd"):
            raise ConfigError(f"optim.hvp: {self.shared['hvp']!r}; valid: exact, fd")
        eps = self.shared["fd_eps"]
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0):
            raise ConfigError(f"optim.fd_eps: expected a positive number, got {eps!r}")
        self.shared["forward_mode"] = _truthy("forward_mode", self.shared["forward_mode"])
        #: diagnostics of the last step's linear solve (CGD/ACGD): iterations, residual, converged
        self.last_solve: dict[str, Any] = {}
        self._buffers_after_first: list[Tensor] | None = None
        self._pushforward: dict[int, Pushforward] | None = None

    #: whether the method's products go through :meth:`GameDerivatives.mixed` across players (CGD/ACGD), the only
    #: products a declared pushforward serves; consensus's Jᵀξ and SGA's Aᵀξ take one backward pass per player
    mixes_players = False

    @property
    def wants_pushforward(self) -> bool:  # type: ignore[override]
        return self.mixes_players and bool(self.shared["forward_mode"])

    def step(self, closure, players=None):
        self._buffers_after_first = None
        try:
            losses = super().step(closure, players)
        finally:
            self._pushforward = None  # holds G's samples with their graph: not kept past the step
        if self._buffers_after_first is not None and not self.last_step_skipped:
            with torch.no_grad():
                for buf, saved in zip(self.buffers, self._buffers_after_first, strict=True):
                    buf.copy_(saved)
            self._buffers_after_first = None
        return losses

    def first_evaluation(self, evaluate: Closure) -> list[Tensor]:
        """The step's first closure call; remembers the buffers it leaves (see the class doc)."""
        raw = evaluate()
        self._pushforward = getattr(raw, "pushforward", None) if self.wants_pushforward else None
        losses = list(raw)
        if self.buffers and self.shared["hvp"] == "fd":
            self._buffers_after_first = [b.detach().clone() for b in self.buffers]
        return losses

    def derivatives(self, evaluate: Closure, losses: list[Tensor]) -> GameDerivatives:
        return GameDerivatives(
            self.players,
            losses,
            evaluate=evaluate,
            mode=self.shared["hvp"],
            eps_rel=self.shared["fd_eps"],
            counts=self.counts,
            pushforward=self._pushforward,
        )

    def own_gradients(self, d: GameDerivatives, which: list[int]) -> dict[int, list[Tensor]]:
        """Detached ξ_i for the players in ``which``, norms recorded and clipped (base ``clip``)."""
        return {i: self.clip(i, [g.detach() for g in d.grad(i, i)]) for i in which}


class _FieldMethod(SecondOrder):
    """Consensus and SGA: an adjusted field v_i fed to a per-player base rule (SGD, RMSprop, Adam)."""

    game_level = frozenset({"hvp", "fd_eps", "forward_mode", "base"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = {
            **SecondOrder.defaults,
            "base": "sgd",
            "alpha": 0.99,  # RMSprop decay (base: rmsprop)
            "beta1": 0.5,  # Adam (base: adam)
            "beta2": 0.999,
            "eps": 1e-8,  # RMSprop / Adam
            **cls.extra_defaults,
        }

    extra_defaults: dict[str, Any] = {}
    #: exact mode: take each loss's gradient with respect to every player (needed for Jv)
    full_gradients = False

    def __init__(self, players, **hyper_parameters) -> None:
        super().__init__(players, **hyper_parameters)
        if self.shared["base"] not in _BASES:
            raise ConfigError(f"optim.base: {self.shared['base']!r}; valid: {', '.join(_BASES)}")
        self.transform: Transform = TRANSFORMS[self.shared["base"]]()

    def adjusted_field(self, d: GameDerivatives, xi: list[list[Tensor]]) -> list[list[Tensor]]:
        raise NotImplementedError

    def _step(self, evaluate: Closure, active: list[int]) -> None:
        losses = self.first_evaluation(evaluate)
        d = self.derivatives(evaluate, losses)
        n = len(self.players)
        for i in range(n):  # every gradient before any (fd) product; one backward per loss
            d.prepare(i, range(n) if self.full_gradients and d.mode == "exact" else [i])
        g = self.own_gradients(d, list(range(n)))
        xi = [g[i] for i in range(n)]
        v = self.adjusted_field(d, xi)
        for i in active:
            delta = self.transform.update(v[i], self.players[i], self.player_state(i), self.hp[i])
            self.add_to_params(i, delta)


@OPTIMIZERS.register("consensus")
class Consensus(_FieldMethod):
    """Consensus optimization (Mescheder, Nowozin & Geiger 2017, "The Numerics of GANs", §3.3,
    Algorithm 1): follow ξ + γ∇L with L = ½‖ξ‖², i.e. v = ξ + γ Jᵀξ, then a base step
    (their experiments use RMSprop: ``base: rmsprop``). Written for minimisation: their ascent field is
    −ξ and their w = v − γ∇L becomes ours with both signs flipped.

    Hyper-parameters: ``lr`` (1e-2), ``gamma`` (1.0, per player), ``base`` (sgd | rmsprop | adam) with
    ``alpha``/``beta1``/``beta2``/``eps``, ``hvp``, ``fd_eps``, ``max_grad_norm``.
    Cost per step: 1 closure, n gradients with graph, 1 product Jᵀξ (fd: n products, 2n closures).
    """

    extra_defaults = {"gamma": 1.0}

    def adjusted_field(self, d, xi):
        jt = d.field_vjp(xi)
        return [
            [x + self.hp[i]["gamma"] * j for x, j in zip(xi[i], jt[i], strict=True)] for i in range(len(self.players))
        ]


@OPTIMIZERS.register("sga")
class SGA(_FieldMethod):
    """Symplectic gradient adjustment (Balduzzi et al. 2018, "The Mechanics of n-Player
    Differentiable Games", §3, Algorithm 1): ξ_λ = ξ + λ Aᵀξ with A = ½(J − Jᵀ) the antisymmetric
    part of the game Jacobian, so Aᵀξ = ½(Jᵀξ − Jξ). With ``align: true`` the sign of λ follows
    their Algorithm 1: λ ← λ·sign(⟨ξ, ∇H⟩⟨Aᵀξ, ∇H⟩/d + ε) with ∇H = Jᵀξ (H = ½‖ξ‖²), d the number of
    parameters and ε = ``align_eps`` (0.1, the paper's value). Any number of players.

    Hyper-parameters: ``lr`` (1e-2), ``lam`` (λ, 1.0), ``align`` (false), ``align_eps`` (0.1),
    ``base``, ``hvp``, ``fd_eps``, ``max_grad_norm``.
    Cost per step: 1 closure, n gradients with graph (each loss with respect to all players), n products:
    Aᵀξ is taken directly, (Aᵀξ)_i = ½ ∇_{θ_i} Σ_{j≠i} ⟨ξ_j, ∇_{θ_j}(f_j − f_i)⟩ (one mixed product per player,
    :meth:`~saddlepoint.optim.linalg.GameDerivatives.field_antisymmetric`), not as ½(Jᵀξ − Jξ) (1 + n); for two
    players that is the paper's two Jacobian-vector products. ``align`` adds Jᵀξ (1 product). fd: n products,
    2n closures (align: 2n products).
    :attr:`last_lambda` holds the λ used.
    """

    extra_defaults = {"lam": 1.0, "align": False, "align_eps": 0.1}
    full_gradients = True
    game_level = frozenset({"hvp", "fd_eps", "forward_mode", "base", "lam", "align", "align_eps"})

    def __init__(self, players, **hyper_parameters) -> None:
        super().__init__(players, **hyper_parameters)
        self.shared["align"] = _truthy("align", self.shared["align"])
        self.last_lambda = float(self.shared["lam"])

    def adjusted_field(self, d, xi):
        n = len(self.players)
        at = d.field_antisymmetric(xi)
        lam = float(self.shared["lam"])
        if self.shared["align"]:
            jt = d.field_vjp(xi)  # ∇H = Jᵀξ
            flat_xi = flatten([t for i in range(n) for t in xi[i]])
            flat_h = flatten([t for i in range(n) for t in jt[i]])
            flat_at = flatten([t for i in range(n) for t in at[i]])
            dim = max(1, flat_xi.numel())
            s = float(torch.dot(flat_xi, flat_h)) * float(torch.dot(flat_at, flat_h)) / dim
            lam = lam if s + float(self.shared["align_eps"]) >= 0 else -lam
        self.last_lambda = lam
        return [[x + lam * a for x, a in zip(xi[i], at[i], strict=True)] for i in range(n)]


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
    differs from a fresh product by rounding only, ≈ 1e-7 relative in float32 on DCGAN-28, far below
    any CG tolerance); ``fresh`` recomputes it with one more product.

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
    tolerance in exact arithmetic, ≈ 10% fewer measured on DCGAN-28), ``recover`` (incremental),
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
    game_level = frozenset(
        {
            "hvp",
            "fd_eps",
            "forward_mode",
            "zero_sum",
            "tol",
            "atol",
            "max_iter",
            "restart",
            "warm_start",
            "warm_scale",
            "recover",
            "krylov",
        }
    )

    def __init__(self, players, **hyper_parameters) -> None:
        zs = hyper_parameters.get("zero_sum")
        if isinstance(zs, bool):  # YAML/CLI booleans; stored as the names "true"/"false"
            hyper_parameters["zero_sum"] = "true" if zs else "false"
        super().__init__(players, **hyper_parameters)
        if len(self.players) != 2:
            raise ConfigError(
                f"optim.name: {type(self).__name__.lower()} is a two-player method, got {len(self.players)} players"
            )
        zs = self.shared["zero_sum"]
        if not (isinstance(zs, str) and zs.lower() in ("auto", "true", "false")):
            raise ConfigError(f"optim.zero_sum: {zs!r}; valid: auto, true, false")
        self.shared["zero_sum"] = zs.lower()
        self.shared["warm_start"] = _truthy("warm_start", self.shared["warm_start"])
        self.shared["warm_scale"] = _truthy("warm_scale", self.shared["warm_scale"])
        rec = self.shared["recover"]
        if not (isinstance(rec, str) and rec.lower() in ("incremental", "fresh")):
            raise ConfigError(f"optim.recover: {rec!r}; valid: incremental, fresh")
        self.shared["recover"] = rec.lower()
        kr = self.shared["krylov"]
        if not (isinstance(kr, str) and kr.lower() in ("cg", "cr")):
            raise ConfigError(f"optim.krylov: {kr!r}; valid: cg, cr")
        self.shared["krylov"] = kr.lower()
        for key in ("tol", "atol"):
            val = self.shared[key]
            if isinstance(val, bool) or not isinstance(val, (int, float)) or val < 0:
                raise ConfigError(f"optim.{key}: expected a non-negative number, got {val!r}")
        for key in ("max_iter", "restart"):
            val = self.shared[key]
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ConfigError(f"optim.{key}: expected a positive integer, got {val!r}")

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
    def _step(self, evaluate: Closure, active: list[int]) -> None:
        losses = self.first_evaluation(evaluate)
        d = self.derivatives(evaluate, losses)
        if len(set(active)) < 2:
            g = self.own_gradients(d, list(active))
            eta = self.step_sizes(g)
            for i in active:
                self.add_to_params(i, [-(e * gi) for gi, e in zip(g[i], self._per_tensor(eta[i], i), strict=True)])
            self.last_solve = {"iterations": 0, "residual": 0.0, "converged": True}
            return
        # every gradient at the base point first (fd products perturb the parameters in place)
        decided = self._decided_zero_sum()
        if decided:
            d.prepare(1, [0, 1])  # ∇g with graph: both mixed products come from D's loss
            d.prepare(0, [0], graph=False)
        else:  # general sum, or still undecided
            d.prepare(0, [0, 1])
            d.prepare(1, [0, 1])
        g = self.own_gradients(d, [0, 1])
        zero_sum = decided if decided is not None else self._detect_zero_sum(d)
        eta = self.step_sizes(g)
        gx, gy = flatten(g[0]), flatten(g[1])
        ex, ey = eta[0], eta[1]
        sx = ex**0.5 if isinstance(ex, float) else ex.sqrt()
        sy = ey**0.5 if isinstance(ey, float) else ey.sqrt()
        X, Y = self.players
        info: dict[str, Any] = {}
        warm = self.state.get("warm") if self.shared["warm_start"] else None
        tol, atol, max_iter = (
            float(self.shared["tol"]),
            float(self.shared["atol"]),
            int(self.shared["max_iter"]),
        )

        if zero_sum:

            def D(v: Tensor) -> Tensor:  # D_xy f v = −∇_x(∇_y g · v), v in y-space
                return -flatten(d.mixed(1, 0, 1, unflatten(v, Y)))

            def DT(u: Tensor) -> Tensor:  # D_yx f u = −∇_y(∇_x g · u), u in x-space
                return -flatten(d.mixed(1, 1, 0, unflatten(u, X)))

            rhs = -sx * (gx - D(ey * gy))
            last: list[Tensor] = []  # DT(√η_x v) of the latest matvec: CG keeps DT(√η_x u) from it

            def matvec(u: Tensor) -> Tensor:
                last[:] = [DT(sx * u)]
                return u + sx * D(ey * last[0])

            x0 = warm if warm is not None and warm.shape == rhs.shape and bool(torch.any(warm != 0)) else None
            r0 = t0 = None
            if x0 is not None:  # r0 = b − A x0 with A x0 = x0 + √η_x D η_y t0, t0 = DT(√η_x x0)
                t0 = DT(sx * x0)
                ax0 = x0 + sx * D(ey * t0)
                if self.shared["warm_scale"]:  # the best multiple c·x0 (A x0 is known: free)
                    c = warm_scale(rhs, ax0)
                    x0, t0, ax0 = c * x0, c * t0, c * ax0
                    info["warm_scale"] = c
                r0 = rhs - ax0
            solve = cr if self.shared["krylov"] == "cr" else cg
            u, _ = solve(
                matvec, rhs, x0, r0=r0, side=lambda: last[0], side0=t0, tol=tol, atol=atol, max_iter=max_iter, info=info
            )
            dx = sx * u
            # Δy = −η_y (∇_y g − Dᵀ Δx): Dᵀ Δx = DT(√η_x u) kept up to date by CG (no product);
            # ``recover: fresh`` recomputes it (one more product)
            tu = info.get("side")
            if tu is None:  # zero solution (no iteration from a zero start)
                tu = torch.zeros_like(gy)
            if self.shared["recover"] == "fresh":
                fresh = DT(dx)
                # diagnostics: how far the running product drifted from the fresh one
                info["recover_drift"] = float(torch.linalg.vector_norm(tu - fresh)) / max(
                    float(torch.linalg.vector_norm(fresh)), 1e-300
                )
                tu = fresh
            dy = -ey * (gy - tu)
            if self.shared["warm_start"]:
                self.state["warm"] = u.detach().clone()
        else:
            nx = gx.numel()

            def D1(w: Tensor) -> Tensor:  # D_xy f w
                return flatten(d.mixed(0, 0, 1, unflatten(w, Y)))

            def D2(u: Tensor) -> Tensor:  # D_yx g u
                return flatten(d.mixed(1, 1, 0, unflatten(u, X)))

            def matvec(z: Tensor) -> Tensor:
                u, w = z[:nx], z[nx:]
                return torch.cat([u + sx * D1(sy * w), w + sy * D2(sx * u)])

            rhs = -torch.cat([sx * gx, sy * gy])
            x0 = warm if warm is not None and warm.shape == rhs.shape else None
            z, _ = gmres(
                matvec,
                rhs,
                x0,
                scale_warm=bool(self.shared["warm_scale"]),
                tol=tol,
                atol=atol,
                restart=int(self.shared["restart"]),
                max_iter=max_iter,
                info=info,
            )
            dx, dy = sx * z[:nx], sy * z[nx:]
            if self.shared["warm_start"]:
                self.state["warm"] = z.detach().clone()
        self.last_solve = {
            "iterations": info.get("iterations", 0),
            "residual": info.get("residual", 0.0),
            "converged": info.get("converged", True),
            "zero_sum": zero_sum,
        }
        for key in ("recover_drift", "warm_scale"):
            if key in info:
                self.last_solve[key] = info[key]
        self.add_to_params(0, unflatten(dx.detach(), X))
        self.add_to_params(1, unflatten(dy.detach(), Y))

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
    With minibatch noise the previous solution is a poor start: on DCGAN-28 (minimax, tol 1e-2) its
    residual was 1.5–2.3 × ‖b‖, its best multiple (c ≈ 0.06–0.2) 0.97–0.99 × ‖b‖, and a cold start took
    as many or fewer iterations (14 against 14–16) while saving the 2 warm-start products:
    ``warm_start: false`` with ``krylov: cr`` was the fastest setting measured (docs/optimizers.md).
    Measured on DCGAN-28 (batch 64, float32; H100): the minimax loss (CG) takes 38–46 iterations
    per warm-started step at tol 1e-5 (≈ 0.3–0.5 s, 40–60 Adam steps), 25–30 at 1e-3, 17–21 at 1e-2
    (≈ the CGDs package's "tol 1e-4"); the first, cold step (η = lr/|g| per coordinate, badly
    conditioned) runs to ``max_iter``. The non-saturating loss (general sum, GMRES(20)) takes 80–100.
    A mixed product costs ≈ 0.7 gradients. ``hvp: fd`` is not recommended in float32 (the CG residual
    stagnates on the first steps).
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
