"""Extrapolation methods: extragradient, extrapolation from the past, optimistic gradient.

All three take a step ``θ ← θ + T(g)`` with a per-player update rule ``T`` chosen by the game-level
hyper-parameter ``base`` (``sgd``, ``momentum``, ``adam`` or ``rmsprop``: the registered update rules
of :mod:`.rules` that take their gradient at θ itself, default ``adam``), and differ in *which*
gradient they use. With ``base: sgd``, ``T(g) = −η g`` and the methods are the textbook ones. The
other hyper-parameters are those of the chosen rule (``lr`` and, e.g., ``beta1``/``beta2``/``eps``
for Adam, with the rule's own defaults) plus ``max_grad_norm``; each may be given per player.
Passing a hyper-parameter the chosen rule does not have (e.g. ``beta1`` with ``base: sgd``) is a
:class:`ConfigError`.

Schemes (``scheme``, game-level, as for the first-order methods): ``simultaneous`` (default; every
player is extrapolated and updated together, all gradients of an evaluation taken at the same point,
as in the papers) or ``alternating`` (the players take the method's step one after another, in
``order`` — ``reverse`` of ``players`` by default, i.e. the discriminator first — each seeing the
previous players' updates). Cost per step, in gradients per player (``counts["grad"]``; Gidel et al.
2019), in both schemes: extragradient 2, extrapolation from the past 1, optimistic 1.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .. import checks
from ..errors import ConfigError
from .base import OPTIMIZERS, Closure, GameOptimizer
from .first_order import SchemeGame, check_scheme
from .rules import RULES, build_rule, rule_names


class TransformGame(SchemeGame):
    """A game optimizer whose players step with the update rule named by ``base`` (:mod:`.rules`).

    The class-level :attr:`defaults` are those of the default base (Adam); an instance resolves its
    own from the ``base`` it is given, so ``lr`` defaults to the rule's default (1e-2 for ``sgd`` and
    ``momentum``, 2e-4 for ``adam``, 5e-5 for ``rmsprop``). The rule's state (moments, velocity,
    step count) is kept per player under ``state["players"][i]["base"]``.
    """

    default_base = "adam"
    #: a method's own game-level hyper-parameters with their defaults
    extra_defaults: dict[str, Any] = {}
    defaults: dict[str, Any] = {
        **GameOptimizer.defaults,
        **RULES.get("adam").defaults,
        "base": "adam",
        "scheme": "simultaneous",
        "order": "reverse",
    }
    game_level = frozenset({"base", "scheme", "order"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.defaults = {**TransformGame.defaults, **cls.extra_defaults}
        cls.game_level = TransformGame.game_level | set(cls.extra_defaults)

    def __init__(self, players, *, buffers=(), **hyper_parameters: Any) -> None:
        self.transform = build_rule(hyper_parameters.get("base", self.default_base), look_ahead=False)
        # instance attribute: the base class validates the given hyper-parameters against it
        self.defaults = {
            **GameOptimizer.defaults,
            **self.transform.defaults,
            "base": self.default_base,
            "scheme": "simultaneous",
            "order": "reverse",
            **self.extra_defaults,
        }
        super().__init__(players, buffers=buffers, **hyper_parameters)
        check_scheme(self.shared)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        base = self.shared.get("base", self.default_base)
        if base not in rule_names(look_ahead=False):
            raise ConfigError(f"optimizer state: unknown base rule {base!r}")
        self.transform = build_rule(base, look_ahead=False)

    def _delta(self, i: int, grads: list[Tensor]) -> list[Tensor]:
        """T(g) for player i; advances the rule's state (moments, velocity, step count)."""
        state = self.player_state(i).setdefault("base", {})
        return self.transform.update(grads, self.players[i], state, self.hp[i])


@OPTIMIZERS.register("extragradient")
class Extragradient(TransformGame):
    """Extragradient (Korpelevich 1976; Gidel et al. 2019, "A variational inequality perspective on
    generative adversarial networks": ExtraSGD, their Alg. 2 without averaging, and Extra-Adam, Alg. 4).

    For every player, from the *saved* point θ_t::

        θ_{t+½} = θ_t + T(g(θ_t))          (extrapolation; all players together when simultaneous)
        θ_{t+1} = θ_t + T(g(θ_{t+½}))      (update, gradient at the extrapolated point)

    With ``base: sgd``: θ_{t+½} = θ_t − η g(θ_t), θ_{t+1} = θ_t − η g(θ_{t+½}); on a bilinear game it
    contracts by √((1−η²σ²)² + η²σ²) per step along each singular value σ.

    With a stateful rule the state advances at *both* calls, as in Gidel et al.'s ExtraAdam: the Adam
    moments absorb g(θ_t) at the extrapolation and g(θ_{t+½}) at the update, and the Adam step count
    (bias correction) grows by two per step; heavy-ball velocity likewise.

    Samples (``independent_batches``, game-level, default false): false evaluates both gradients on one
    minibatch (the closure replays its batch and noise; the "same-sample" extragradient of Mishchenko et al.
    2020, "Revisiting stochastic extragradient", eq. 4). True takes a fresh minibatch for the update, as in Gidel
    et al.'s Alg. 2 (independent ξ_t and ξ'_t) and their code: ``step((closure_a, closure_b))``, the
    extrapolation on a and the update on b; in GAN training the trainer then draws two batches per step.

    Cost: 2 gradients per player per step; two closure calls (two per player when alternating). The
    losses returned and the gradient norms in ``last_grad_norms`` are those at θ_t (each player's first
    evaluation).
    """

    extra_defaults = {"independent_batches": False}

    def __init__(self, players, *, buffers=(), **hyper_parameters: Any) -> None:
        super().__init__(players, buffers=buffers, **hyper_parameters)
        self.shared["independent_batches"] = checks.boolean("optim.independent_batches",
                                                            self.shared["independent_batches"])

    @property
    def wants_independent_batches(self) -> bool:  # type: ignore[override]
        """Whether the trainer passes two closures on independent minibatches (``independent_batches``)."""
        return bool(self.shared["independent_batches"])

    def _group_step(self, evaluate: Closure, group: list[int]) -> None:
        saved = {i: self.snapshot(i) for i in group}
        losses = evaluate()
        grads = {i: self.gradient(losses, i) for i in group}
        del losses
        norms = {i: self.last_grad_norms[i] for i in group}
        for i in group:
            self.add_to_params(i, self._delta(i, grads[i]))
        losses = (self.second_evaluation() if self.has_second_batch else evaluate)()
        grads = {i: self.gradient(losses, i) for i in group}
        del losses
        for i in group:
            self.set_params(i, saved[i])
            self.add_to_params(i, self._delta(i, grads[i]))
            self.last_grad_norms[i] = norms[i]  # in place: the list may be shared (lookahead)


@OPTIMIZERS.register("past-extragradient")
class PastExtragradient(TransformGame):
    """Extrapolation from the past (Popov 1980; Gidel et al. 2019, "A variational inequality
    perspective on generative adversarial networks": PastExtraSGD, their Alg. 3 without averaging;
    with ``base: adam`` the Adam variant of their experiments).

    The extrapolation reuses the gradient stored at the previous step instead of a fresh one::

        θ_{t+½} = θ_t + T(g(θ_{t−½}))      (stored gradient, no evaluation)
        θ_{t+1} = θ_t + T(g(θ_{t+½}))      (one evaluation; g(θ_{t+½}) is stored for the next step)

    First step: there is no past gradient, so no extrapolation (θ_{½} = θ_0) and the update uses the
    current gradient g(θ_0), which is then stored; so the cost is exactly 1 gradient per player on
    every step, the first included. With ``base: sgd`` the extrapolated points θ_{t+½} coincide with the
    iterates of ``optimistic`` (OGDA) started from θ_0.

    With a stateful rule its state advances at both the extrapolation (with the stored gradient) and
    the update, consistently with ``extragradient`` (so Adam's moments see each gradient twice).
    The stored gradient is the clipped one. The losses returned and the gradient norms are those at
    θ_{t+½}, the only point evaluated.
    """

    def _group_step(self, evaluate: Closure, group: list[int]) -> None:
        saved: dict[int, list[Tensor]] = {}
        for i in group:
            past = self.player_state(i).get("past_grad")
            if past is not None:
                saved[i] = self.snapshot(i)
                self.add_to_params(i, self._delta(i, past))
        losses = evaluate()
        grads = {i: self.gradient(losses, i) for i in group}
        del losses
        for i in group:
            if i in saved:
                self.set_params(i, saved[i])
            self.add_to_params(i, self._delta(i, grads[i]))
            self.player_state(i)["past_grad"] = [g.detach() for g in grads[i]]


@OPTIMIZERS.register("optimistic")
class Optimistic(TransformGame):
    """Optimistic gradient descent (Daskalakis, Ilyas, Syrgkanis & Zeng 2018, "Training GANs with
    optimism"; OGDA, and Optimistic Adam with ``base: adam``, their Alg. 1).

    With the step u_t = T(g(θ_t)) of the chosen rule::

        θ_{t+1} = θ_t + 2 u_t − u_{t−1}

    i.e. with ``base: sgd`` θ_{t+1} = θ_t − 2η g_t + η g_{t−1}, and with ``base: adam``
    θ_{t+1} = θ_t − 2η m̂_t/(√v̂_t + ε) + η m̂_{t−1}/(√v̂_{t−1} + ε) (moments updated once per step).
    The previous step u_{t−1} is kept per player in the state (``prev_step``); it starts at zero
    (u_{−1} = 0, as zero-initialised moments give), so the first step is θ_1 = θ_0 + 2 u_0.

    Cost: 1 gradient per player per step; one closure call (one per player when alternating).
    """

    def _group_step(self, evaluate: Closure, group: list[int]) -> None:
        losses = evaluate()
        grads = {i: self.gradient(losses, i) for i in group}
        del losses
        for i in group:
            step = self._delta(i, grads[i])
            state = self.player_state(i)
            previous = state.get("prev_step")
            self.add_to_params(i, step, alpha=2.0)
            if previous is not None:
                self.add_to_params(i, previous, alpha=-1.0)
            state["prev_step"] = step
