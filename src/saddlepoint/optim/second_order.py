"""Second-order game optimizers: the shared machinery, consensus optimization and SGA.

CGD and ACGD are in :mod:`.competitive`. Conventions shared by every second-order method (see
:mod:`saddlepoint.optim.derivatives` for the products):

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
  declares the generator's samples, :class:`~saddlepoint.optim.derivatives.Pushforward`), the mixed products
  that differentiate through that player (D_yx·u in a GAN) use a forward pass of the tangent through its
  network (a tangent-only pass over the recorded layers when the network is a chain of standard layers,
  :mod:`~saddlepoint.games.tangents`; ``torch.func.jvp`` otherwise) instead of a second backward pass through
  its backward graph: the same numbers (to rounding), at a lower cost (measured in
  ``benchmarks/bench_optim.py``, part ``dyx``). Consensus and SGA take no such products. Ignored for
  closures that declare nothing, in ``fd`` mode, and under autocast.
* ``counts["hvp"]`` counts second-derivative products, ``counts["grad"]`` backward passes of a loss.
* Every method here declares ``requires_double_backward = True``: training code reads it (not the class)
  to refuse what cannot be differentiated twice (compiled modules) or too coarsely (bfloat16 autocast).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import checks
from .base import OPTIMIZERS, Closure, GameOptimizer
from .derivatives import GameDerivatives, Pushforward, flatten
from .rules import RULES, Gradient, UpdateRule, build_rule, rule_hyper_parameters, rule_names

__all__ = ["SGA", "Consensus", "FieldMethod", "SecondOrder"]


class SecondOrder(GameOptimizer):
    """Shared machinery: the ``hvp``/``fd_eps`` settings and the per-step :class:`GameDerivatives`.

    Finite-difference products evaluate the closure at perturbed parameters; so that the registered
    buffers (BatchNorm statistics) hold the update of the evaluation at the current point — as in
    exact mode — they are put back to their values after the first evaluation when the step ends.
    """

    defaults: dict[str, Any] = {**GameOptimizer.defaults, "lr": 1e-2, "hvp": "exact", "fd_eps": None,
                                "forward_mode": False}
    game_level = frozenset({"hvp", "fd_eps", "forward_mode"})
    requires_double_backward = True

    def __init__(self, players, **hyper_parameters) -> None:
        super().__init__(players, **hyper_parameters)
        checks.choice("optim.hvp", self.shared["hvp"], ("exact", "fd"))
        checks.number("optim.fd_eps", self.shared["fd_eps"], low=0, low_open=True, none=True)
        self.shared["forward_mode"] = checks.boolean("optim.forward_mode", self.shared["forward_mode"])
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
            reduce=self.reduce,
            scaler=self.active_scaler,
            pushforward=self._pushforward,
        )

    def own_gradients(self, d: GameDerivatives, which: list[int]) -> dict[int, list[Tensor]]:
        """Detached ξ_i for the players in ``which``, norms recorded and clipped (base ``clip``)."""
        return {i: self.clip(i, [g.detach() for g in d.grad(i, i)]) for i in which}


class FieldMethod(SecondOrder):
    """Consensus and SGA: an adjusted field v_i fed to a per-player base rule (every registered rule that takes
    the gradient it is given: SGD, heavy ball, RMSprop, Adam, ...; any hyper-parameter of these rules may be
    given whatever the base, with the rule's default)."""

    game_level = frozenset({"hvp", "fd_eps", "forward_mode", "base"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = cls.field_defaults()

    @classmethod
    def field_defaults(cls) -> dict[str, Any]:
        return {
            **SecondOrder.defaults,
            "base": "sgd",
            # the rules' own defaults (lr excepted: 1e-2 for every base)
            **rule_hyper_parameters(rule_names(look_ahead=False)),
            **cls.extra_defaults,
        }

    extra_defaults: dict[str, Any] = {}
    #: exact mode: take each loss's gradient with respect to every player (needed for Jv)
    full_gradients = False

    def __init__(self, players, **hyper_parameters) -> None:
        base = hyper_parameters.get("base", self.defaults["base"])
        if isinstance(base, str) and base in RULES:
            # the chosen base's own defaults win over another rule's default for a shared key (eps, betas)
            own = {k: v for k, v in RULES.get(base).defaults.items() if k != "lr"}
            hyper_parameters = {**own, **hyper_parameters}
        super().__init__(players, **hyper_parameters)
        self.transform: UpdateRule = build_rule(self.shared["base"], look_ahead=False)

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
            if self.rule_needs_hessian_diagonal:  # AdaHessian: each player's own Hessian diagonal at θ_t
                v[i] = Gradient(v[i], hessian_diagonal=self.hessian_diagonal(d, i))
            delta = self.transform.update(v[i], self.players[i], self.player_state(i), self.hp[i])
            self.add_to_params(i, delta)


@OPTIMIZERS.register("consensus")
class Consensus(FieldMethod):
    """Consensus optimization (Mescheder, Nowozin & Geiger 2017, "The Numerics of GANs", §3.3,
    Algorithm 1): follow ξ + γ∇L with L = ½‖ξ‖², i.e. v = ξ + γ Jᵀξ, then a base step
    (their experiments use RMSprop: ``base: rmsprop``). Written for minimisation: their ascent field is
    −ξ and their w = v − γ∇L becomes ours with both signs flipped.

    Hyper-parameters: ``lr`` (1e-2), ``gamma`` (1.0, per player), ``base`` (sgd | momentum | rmsprop | adam)
    with ``momentum``/``alpha``/``beta1``/``beta2``/``eps``, ``hvp``, ``fd_eps``, ``max_grad_norm``.
    Cost per step: 1 closure, n gradients with graph, 1 product Jᵀξ (fd: n products, 2n closures).
    """

    extra_defaults = {"gamma": 1.0}

    def adjusted_field(self, d, xi):
        jt = d.field_vjp(xi)
        return [
            [x + self.hp[i]["gamma"] * j for x, j in zip(xi[i], jt[i], strict=True)] for i in range(len(self.players))
        ]


@OPTIMIZERS.register("sga")
class SGA(FieldMethod):
    """Symplectic gradient adjustment (Balduzzi et al. 2018, "The Mechanics of n-Player
    Differentiable Games", §3, Algorithm 1): ξ_λ = ξ + λ Aᵀξ with A = ½(J − Jᵀ) the antisymmetric
    part of the game Jacobian, so Aᵀξ = ½(Jᵀξ − Jξ). With ``align: true`` the sign of λ follows
    their Algorithm 1: λ ← λ·sign(⟨ξ, ∇H⟩⟨Aᵀξ, ∇H⟩/d + ε) with ∇H = Jᵀξ (H = ½‖ξ‖²), d the number of
    parameters and ε = ``align_eps`` (0.1, the paper's value). Any number of players.

    Hyper-parameters: ``lr`` (1e-2), ``lam`` (λ, 1.0), ``align`` (false), ``align_eps`` (0.1),
    ``base``, ``hvp``, ``fd_eps``, ``max_grad_norm``.
    Cost per step: 1 closure, n gradients with graph (each loss with respect to all players), n products:
    Aᵀξ is taken directly, (Aᵀξ)_i = ½ ∇_{θ_i} Σ_{j≠i} ⟨ξ_j, ∇_{θ_j}(f_j − f_i)⟩ (one mixed product per player,
    :meth:`~saddlepoint.optim.derivatives.GameDerivatives.field_antisymmetric`), not as ½(Jᵀξ − Jξ) (1 + n); for two
    players that is the paper's two Jacobian-vector products. ``align`` adds Jᵀξ (1 product). fd: n products,
    2n closures (align: 2n products).
    :attr:`last_lambda` holds the λ used.
    """

    extra_defaults = {"lam": 1.0, "align": False, "align_eps": 0.1}
    full_gradients = True
    game_level = frozenset({"hvp", "fd_eps", "forward_mode", "base", "lam", "align", "align_eps"})

    def __init__(self, players, **hyper_parameters) -> None:
        super().__init__(players, **hyper_parameters)
        self.shared["align"] = checks.boolean("optim.align", self.shared["align"])
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


def _follow_rules(name: str, rule: type[UpdateRule]) -> None:
    """A rule registered later brings its hyper-parameters to consensus, SGA and any other field method."""
    pending = list(FieldMethod.__subclasses__())
    while pending:
        cls = pending.pop()
        cls.defaults = cls.field_defaults()
        pending.extend(cls.__subclasses__())


RULES.subscribe(_follow_rules)
