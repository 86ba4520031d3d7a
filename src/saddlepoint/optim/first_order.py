"""First-order methods: each player follows its own gradient with a per-player update rule.

An update rule (:class:`Transform`) is a small stateless object in the optax spirit: it turns a
player's gradient and its state into a parameter increment, and may ask for the gradient to be taken
at a shifted point (Nesterov's look-ahead). The same rules are the base steps of the extrapolation
methods. Schemes (Gidel et al. 2019, "Negative momentum for improved game dynamics"):

* ``simultaneous``: every active player's gradient at the same point θ_t, then all update;
* ``alternating``: players update one after another, each gradient taken after the previous players'
  updates. The default order is the reverse of ``players`` (GANs pass the generator first, so the
  discriminator updates first); ``order: forward`` keeps the given order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import OPTIMIZERS, Closure, GameOptimizer


class Transform:
    """A per-player update rule: ``update`` returns Δθ to add to the parameters."""

    defaults: dict[str, Any] = {"lr": 1e-3}

    def update(self, grads: list[Tensor], params: list[Tensor], state: dict, hp: dict) -> list[Tensor]:
        raise NotImplementedError

    def lookahead(self, params: list[Tensor], state: dict, hp: dict) -> list[Tensor] | None:
        """Offset from θ at which the gradient must be evaluated (None: at θ)."""
        return None


class SGD(Transform):
    """Gradient descent: θ ← θ − η g."""

    defaults = {"lr": 1e-2}

    def update(self, grads, params, state, hp):
        return [g * -hp["lr"] for g in grads]


class HeavyBall(Transform):
    """Polyak's heavy ball, written as in Gidel et al. (2019, eq. 5), so negative momentum works:
    v ← β v − η g,  θ ← θ + v  (i.e. θ_{t+1} = θ_t − η g_t + β (θ_t − θ_{t−1}))."""

    defaults = {"lr": 1e-2, "momentum": 0.9}

    def update(self, grads, params, state, hp):
        v = state.get("v")
        if v is None:
            v = state["v"] = [torch.zeros_like(p) for p in params]
        torch._foreach_mul_(v, hp["momentum"])
        torch._foreach_add_(v, grads, alpha=-hp["lr"])
        return [x.clone() for x in v]


class Nesterov(HeavyBall):
    """Nesterov's accelerated gradient with the true look-ahead gradient (Nesterov 1983; Sutskever et
    al. 2013, eq. 3-4): v ← β v − η ∇f(θ + β v),  θ ← θ + v."""

    def lookahead(self, params, state, hp):
        v = state.get("v")
        if v is None:
            return None
        return [x * hp["momentum"] for x in v]


class Adam(Transform):
    """Adam (Kingma & Ba 2015, Alg. 1): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
    θ ← θ − η m̂/(√v̂ + ε) with bias corrections m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ). β₁ < 0 is allowed
    (negative momentum, Gidel et al. 2019)."""

    defaults = {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "eps": 1e-8}

    def update(self, grads, params, state, hp):
        b1, b2 = hp["beta1"], hp["beta2"]
        if "m" not in state:
            state["m"] = [torch.zeros_like(p) for p in params]
            state["v"] = [torch.zeros_like(p) for p in params]
            state["t"] = 0
        state["t"] += 1
        t = state["t"]
        m, v = state["m"], state["v"]
        torch._foreach_mul_(m, b1)
        torch._foreach_add_(m, grads, alpha=1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        step = hp["lr"] / (1 - b1**t)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, (1 - b2**t) ** 0.5)
        torch._foreach_add_(denom, hp["eps"])
        return [-step * a / d for a, d in zip(m, denom)]


class RMSprop(Transform):
    """RMSprop (Tieleman & Hinton 2012): v ← αv + (1−α)g², θ ← θ − η g/(√v + ε)."""

    defaults = {"lr": 5e-5, "alpha": 0.99, "eps": 1e-8}

    def update(self, grads, params, state, hp):
        if "v" not in state:
            state["v"] = [torch.zeros_like(p) for p in params]
        v = state["v"]
        torch._foreach_mul_(v, hp["alpha"])
        torch._foreach_addcmul_(v, grads, grads, value=1 - hp["alpha"])
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, hp["eps"])
        return [-hp["lr"] * g / d for g, d in zip(grads, denom)]


TRANSFORMS: dict[str, type[Transform]] = {
    "sgd": SGD,
    "momentum": HeavyBall,
    "nesterov": Nesterov,
    "adam": Adam,
    "rmsprop": RMSprop,
}


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
    """Every player applies its :class:`Transform` to its own gradient (simultaneous or alternating)."""

    transform: Transform = SGD()
    game_level = frozenset({"scheme", "order"})
    #: the scheme GAN training uses when ``optim.scheme`` is not set (the DCGAN convention)
    gan_scheme = "alternating"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
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

    transform = SGD()


@OPTIMIZERS.register("momentum")
class MomentumGDA(FirstOrder):
    """Heavy-ball momentum per player (negative β allowed; Gidel et al. 2019)."""

    transform = HeavyBall()


@OPTIMIZERS.register("nesterov")
class NesterovGDA(FirstOrder):
    """Nesterov momentum per player, gradient at the look-ahead point θ + βv."""

    transform = Nesterov()


@OPTIMIZERS.register("adam")
class AdamGDA(FirstOrder):
    """Adam per player (Kingma & Ba 2015)."""

    transform = Adam()


@OPTIMIZERS.register("rmsprop")
class RMSpropGDA(FirstOrder):
    """RMSprop per player (the WGAN paper's optimizer)."""

    transform = RMSprop()
