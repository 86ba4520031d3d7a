"""The one registry of per-player update rules: SGD, heavy ball, Nesterov, Adam, RMSprop.

An update rule is a small stateless object in the optax spirit: it turns a player's gradient and its
state into a parameter increment Δθ, and may ask for the gradient to be taken at a shifted point
(Nesterov's look-ahead). Each rule states its hyper-parameters and their defaults once, in
:attr:`UpdateRule.defaults`; every method built on per-player rules reads them from here:

* the first-order methods (:mod:`.first_order`): one optimizer per rule, registered under the rule's name;
* the extrapolation methods (:mod:`.extrapolation`) and consensus/SGA (:mod:`.second_order`): the
  game-level hyper-parameter ``base`` names the rule. They apply the rule to a gradient they computed
  themselves, so they accept the rules that do not look ahead (:func:`rule_names`).

Adding a rule is one class plus ``@RULES.register("name")``; it then exists as a first-order optimizer
and as a ``base`` of the other methods (they follow the registry with :meth:`RuleRegistry.subscribe`, so a
rule registered after ``saddlepoint.optim`` was imported joins too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["RULES", "SGD", "Adam", "Gradient", "HeavyBall", "Nesterov", "RMSprop", "RuleRegistry",
           "SignSGD", "Transform", "UpdateRule", "build_rule", "rule_hyper_parameters", "rule_names",
           "spatial_average"]


class Gradient(list):
    """A player's gradient (tensors shaped like its parameters) with what was measured along with it.

    ``hessian_diagonal``: Hutchinson's estimate z ⊙ ∇²f_i z of the diagonal of the player's own Hessian, at the
    point and on the batch of the gradient, present when the rule declares :attr:`UpdateRule.needs_hessian_diagonal`
    and the method took the gradient with :meth:`~saddlepoint.optim.base.GameOptimizer.gradient` (or measured the
    diagonal itself). A plain list is a gradient without it.
    """

    def __init__(self, tensors: Any = (), *, hessian_diagonal: list[Tensor] | None = None) -> None:
        super().__init__(tensors)
        self.hessian_diagonal = hessian_diagonal


class UpdateRule:
    """A per-player update rule: ``update`` returns Δθ to add to the parameters."""

    #: the rule's hyper-parameters with their defaults (each may be given per player)
    defaults: dict[str, Any] = {"lr": 1e-3}
    #: whether the rule needs its gradient at a shifted point (:meth:`lookahead`); a method that is handed
    #: gradients taken elsewhere cannot honour that
    looks_ahead: bool = False
    #: whether the rule needs Hutchinson's diagonal of the player's Hessian with each gradient (:class:`Gradient`);
    #: methods that take gradients with ``GameOptimizer.gradient`` provide it (and then differentiate twice)
    needs_hessian_diagonal: bool = False
    #: whether Δθ is −η times a linear map of the gradient (SGD, heavy ball, Nesterov): a term w·c added to the
    #: gradient then moves θ by −ηw·c. Adaptive rules (Adam, RMSprop, signSGD) normalise their input instead,
    #: so a method that adds a term of its own (LEAD's coupling) must not scale it by 1/η for them
    linear_in_gradient: bool = False

    def update(self, grads: list[Tensor], params: list[Tensor], state: dict, hp: dict) -> list[Tensor]:
        raise NotImplementedError

    def lookahead(self, params: list[Tensor], state: dict, hp: dict) -> list[Tensor] | None:
        """Offset from θ at which the gradient must be evaluated (None: at θ)."""
        return None


#: the former name of :class:`UpdateRule`
Transform = UpdateRule

class RuleRegistry(Registry[type[UpdateRule]]):
    """The registry of update rules; :meth:`subscribe` lets the methods built on rules follow it."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self._listeners: list[Callable[[str, type[UpdateRule]], None]] = []

    def add(self, name: str, obj: type[UpdateRule], *aliases: str, **facts: Any) -> type[UpdateRule]:
        obj = super().add(name, obj, *aliases, **facts)
        for listener in self._listeners:
            listener(name, obj)
        return obj

    def subscribe(self, listener: Callable[[str, type[UpdateRule]], None]) -> None:
        """Call ``listener(name, rule)`` for every rule registered so far and for every one registered later."""
        self._listeners.append(listener)
        for name, rule in list(self.items()):
            listener(name, rule)


RULES = RuleRegistry("update rule")


@RULES.register("sgd")
class SGD(UpdateRule):
    """Gradient descent: θ ← θ − η g."""

    defaults = {"lr": 1e-2}
    linear_in_gradient = True

    def update(self, grads, params, state, hp):
        return [g * -hp["lr"] for g in grads]


@RULES.register("momentum")
class HeavyBall(UpdateRule):
    """Polyak's heavy ball, written as in Gidel et al. (2019, eq. 5), so negative momentum works:
    v ← β v − η g,  θ ← θ + v  (i.e. θ_{t+1} = θ_t − η g_t + β (θ_t − θ_{t−1}))."""

    defaults = {"lr": 1e-2, "momentum": 0.9}
    linear_in_gradient = True

    def update(self, grads, params, state, hp):
        v = state.get("v")
        if v is None:
            v = state["v"] = [torch.zeros_like(p) for p in params]
        torch._foreach_mul_(v, hp["momentum"])
        torch._foreach_add_(v, grads, alpha=-hp["lr"])
        return [x.clone() for x in v]


@RULES.register("nesterov")
class Nesterov(HeavyBall):
    """Nesterov's accelerated gradient with the true look-ahead gradient (Nesterov 1983; Sutskever et
    al. 2013, eq. 3-4): v ← β v − η ∇f(θ + β v),  θ ← θ + v."""

    looks_ahead = True

    def lookahead(self, params, state, hp):
        v = state.get("v")
        if v is None:
            return None
        return [x * hp["momentum"] for x in v]


@RULES.register("adam")
class Adam(UpdateRule):
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


@RULES.register("rmsprop")
class RMSprop(UpdateRule):
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


def spatial_average(diag: Tensor) -> Tensor:
    """AdaHessian's spatial averaging (Yao et al. 2021, eq. 9): a convolution kernel's diagonal (out × in × k…)
    replaced by its mean over each kernel's spatial block (the dimensions after the first two), broadcast back;
    tensors of one or two dimensions are returned as they are."""
    if diag.dim() < 3:
        return diag
    return diag.mean(dim=tuple(range(2, diag.dim())), keepdim=True).expand_as(diag)


@RULES.register("signsgd")
class SignSGD(UpdateRule):
    """signSGD (Bernstein, Wang, Azizzadenesheli & Anandkumar, ICML 2018, Alg. 1): θ ← θ − η sign(g).

    With ``optim.grad: zo`` it is ZO-signSGD (Liu, Chen, Chen & Hong, ICLR 2019, Alg. 1): the sign of a
    zeroth-order estimate ĝ (:mod:`saddlepoint.optim.zeroth_order`; the paper's estimator is forward differences
    along directions uniform on the sphere: ``optim.zo.directions: sphere``, ``optim.zo.difference: forward``)."""

    defaults = {"lr": 1e-3}

    def update(self, grads, params, state, hp):
        return [torch.sign(g) * -hp["lr"] for g in grads]


def rule_names(*, look_ahead: bool = True) -> list[str]:
    """The registered rules (``look_ahead=False``: those that take their gradient at θ itself, i.e. the
    ones a method can apply to a gradient it computed)."""
    return [name for name in RULES.names() if look_ahead or not RULES.get(name).looks_ahead]


def build_rule(name: Any, *, look_ahead: bool = True, key: str = "optim.base") -> UpdateRule:
    """A new instance of the rule ``name``; a :class:`ConfigError` naming ``key`` if there is none (or, with
    ``look_ahead=False``, if it looks ahead)."""
    valid = rule_names(look_ahead=look_ahead)
    if not isinstance(name, str) or name not in valid:
        raise ConfigError(f"{key}: unknown base rule {name!r}; valid: {', '.join(valid)}")
    return RULES.get(name)()


def rule_hyper_parameters(names: list[str]) -> dict[str, Any]:
    """The union of the named rules' hyper-parameters other than ``lr``, with their defaults."""
    out: dict[str, Any] = {}
    for name in names:
        for key, value in RULES.get(name).defaults.items():
            if key != "lr":
                out.setdefault(key, value)
    return out
