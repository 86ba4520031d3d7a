"""First-order methods: each player follows its own gradient with a per-player update rule.

The update rules (:mod:`.rules`: SGD, heavy ball, Nesterov, Adam, RMSprop) are registered once; every
registered rule is a first-order optimizer of the same name here, and the same rules are the base steps
of the extrapolation methods and of consensus/SGA. Schemes (Gidel et al. 2019, "Negative momentum for
improved game dynamics"):

* ``simultaneous``: every active player's gradient at the same point θ_t, then all update;
* ``alternating``: players update one after another, each gradient taken after the previous players'
  updates. The default order is the reverse of ``players`` (GANs pass the generator first, so the
  discriminator updates first); ``order: forward`` keeps the given order.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..errors import ConfigError
from .base import OPTIMIZERS, Closure, GameOptimizer
from .rules import RULES, SGD, Adam, HeavyBall, Nesterov, RMSprop, Transform, UpdateRule

# the rules used to live here: their names still import from this module
__all__ = ["SGD", "Adam", "AdamGDA", "FirstOrder", "GDA", "HeavyBall", "MomentumGDA", "Nesterov", "NesterovGDA",
           "RMSprop", "RMSpropGDA", "SchemeGame", "Transform", "UpdateRule", "check_scheme"]


def check_scheme(shared: dict[str, Any]) -> None:
    """Validate the game-level ``scheme`` and ``order`` hyper-parameters."""
    if shared["scheme"] not in ("simultaneous", "alternating"):
        raise ConfigError(f"optim.scheme: unknown scheme {shared['scheme']!r}; valid: alternating, simultaneous")
    if shared["order"] not in ("reverse", "forward"):
        raise ConfigError(f"optim.order: {shared['order']!r}; valid: forward, reverse")


class SchemeGame(GameOptimizer):
    """Dispatches a step by ``scheme``: all active players as one group (simultaneous), or one player
    after another in ``order`` (alternating). Subclasses implement :meth:`_group_step`."""

    def _step(self, evaluate: Closure, active: list[int]) -> None:
        if self.shared["scheme"] == "simultaneous":
            self._group_step(evaluate, active)
            return
        for i in reversed(active) if self.shared["order"] == "reverse" else active:
            self._group_step(evaluate, [i])

    def _group_step(self, evaluate: Closure, group: list[int]) -> None:
        """One step of the method for the players in ``group``, all at the same point."""
        raise NotImplementedError


class FirstOrder(SchemeGame):
    """Every player applies the update rule named :attr:`rule` (see :mod:`.rules`) to its own gradient
    (simultaneous or alternating)."""

    #: the name of the update rule in :data:`~saddlepoint.optim.rules.RULES`
    rule = "sgd"
    transform: UpdateRule = SGD()
    game_level = frozenset({"scheme", "order"})
    #: the scheme GAN training uses when ``optim.scheme`` is not set (the DCGAN convention)
    gan_scheme = "alternating"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.transform = RULES.get(cls.rule)()
        cls.defaults = {
            **SchemeGame.defaults,
            **cls.transform.defaults,
            "scheme": "simultaneous",
            "order": "reverse",
        }

    def __init__(self, players, **hyper_parameters) -> None:
        super().__init__(players, **hyper_parameters)
        check_scheme(self.shared)

    def _gradients_at_lookahead(self, evaluate: Closure, group: list[int]) -> dict[int, list[Tensor]]:
        """Gradients of the players in ``group``, taken where their transforms look ahead to."""
        offsets = {
            i: self.transform.lookahead(self.players[i], self.player_state(i), self.hp[i]) for i in group
        }
        for i, off in offsets.items():
            if off is not None:
                self.add_to_params(i, off)
        losses = evaluate()
        grads = {i: self.gradient(losses, i) for i in group}
        for i, off in offsets.items():
            if off is not None:
                self.add_to_params(i, off, alpha=-1.0)
        return grads

    def _apply(self, i: int, grads: list[Tensor]) -> None:
        delta = self.transform.update(grads, self.players[i], self.player_state(i), self.hp[i])
        self.add_to_params(i, delta)

    def _group_step(self, evaluate: Closure, group: list[int]) -> None:
        grads = self._gradients_at_lookahead(evaluate, group)
        for i in group:
            self._apply(i, grads[i])


@OPTIMIZERS.register("sgd")
class GDA(FirstOrder):
    """Gradient descent–ascent: θ_i ← θ_i − η_i ∇_i f_i."""

    rule = "sgd"


@OPTIMIZERS.register("momentum")
class MomentumGDA(FirstOrder):
    """Heavy-ball momentum per player (negative β allowed; Gidel et al. 2019)."""

    rule = "momentum"


@OPTIMIZERS.register("nesterov")
class NesterovGDA(FirstOrder):
    """Nesterov momentum per player, gradient at the look-ahead point θ + βv."""

    rule = "nesterov"


@OPTIMIZERS.register("adam")
class AdamGDA(FirstOrder):
    """Adam per player (Kingma & Ba 2015)."""

    rule = "adam"


@OPTIMIZERS.register("rmsprop")
class RMSpropGDA(FirstOrder):
    """RMSprop per player (the WGAN paper's optimizer)."""

    rule = "rmsprop"


def _first_order_method(name: str, rule: type[UpdateRule]) -> None:
    """A rule without a first-order optimizer of its name gets one (the five above have theirs)."""
    if name not in OPTIMIZERS:
        method = type(f"{rule.__name__}GDA", (FirstOrder,), {
            "rule": name, "__module__": __name__, "__doc__": f"{rule.__name__} per player: {rule.__doc__}"})
        OPTIMIZERS.register(name)(method)


RULES.subscribe(_first_order_method)
