"""Discriminator regularisers: gradient penalties and weight clipping.

A penalty is called as ``penalty(D, real, fake)`` and returns a *weighted* scalar to ADD to D's loss.
The input gradients it needs are taken with ``create_graph=True``, so the result can be
differentiated with respect to D's parameters and differentiated again (Hessian-vector products for
second-order game optimizers). Both batches are detached first: a penalty depends on D's parameters
only, never on G's. Random numbers come from torch's global generator.

Per-sample gradients are taken as ∇_x Σ_i D(x_i); this is the gradient of each D(x_i) with respect to
its own x_i only when D treats samples independently (no BatchNorm in D in training mode).

Adding a penalty is one class (a :class:`Penalty` subclass) or one function ``fn(D, real, fake, **options)``
returning the unweighted penalty, plus one registration line declaring its default weight and its options
(each with a default and a validator from :mod:`saddlepoint.checks`)::

    @PENALTIES.register("gp", weight=10.0, options={"one_sided": Option(False, boolean), ...})

Configs set them as ``loss.penalty: {gp: {weight: 10, one_sided: true}}`` (:func:`build_penalties`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..checks import Option, boolean, non_negative, positive
from ..checks import options as check_options
from ..errors import ConfigError
from ..registry import Registry

PENALTIES: Registry[Any] = Registry("penalty")


def _same_shape(name: str, real: Tensor, fake: Tensor) -> None:
    if real.shape != fake.shape:
        raise ValueError(
            f"penalty {name}: real and fake batches differ in shape "
            f"({tuple(real.shape)} vs {tuple(fake.shape)})"
        )


def input_gradients(D: nn.Module, x: Tensor) -> Tensor:
    """∇_x Σ_i D(x_i) at ``x`` (detached from any earlier graph), kept differentiable."""
    x = x.detach().requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad


def per_sample_norms(grad: Tensor) -> Tensor:
    """Euclidean norm of each sample's gradient over all non-batch dimensions: shape (N,)."""
    return torch.linalg.vector_norm(grad.reshape(grad.shape[0], -1), dim=1)


def _per_sample_uniform(x: Tensor) -> Tensor:
    """One U(0, 1) number per sample, shaped to broadcast against ``x``."""
    return torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)


class Penalty:
    """Base class: no penalty. A registered subclass reads its ``weight`` default and declared ``options``
    from its registration facts; each option becomes an attribute. Override :meth:`__call__` (the
    weighted penalty) and/or :meth:`after_step`."""

    name: str = "none"
    default_weight: float = 0.0

    def __init__(self, weight: float | None = None, **options: Any) -> None:
        facts = PENALTIES.facts(self.name) if self.name in PENALTIES else {}
        default = facts.get("weight", self.default_weight)
        self.weight = non_negative(f"loss.{self.name}_weight", default if weight is None else weight)
        self.options = check_options(f"loss.penalty.{self.name}", options, facts.get("options", {}))
        for key, value in self.options.items():
            setattr(self, key, value)

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """The weighted penalty, a scalar to add to D's loss."""
        return real.new_zeros(())

    def after_step(self, D: nn.Module) -> None:
        """Called after every update of D; default no-op."""

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(weight={self.weight}{extra})"


class FunctionPenalty(Penalty):
    """A penalty registered as a function ``fn(D, real, fake, **options) -> unweighted scalar``."""

    def __init__(self, name: str, fn: Callable[..., Tensor], weight: float | None = None, **options: Any) -> None:
        self.name, self.fn = name, fn
        super().__init__(weight, **options)

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return self.weight * self.fn(D, real, fake, **self.options)


@PENALTIES.register("gp", weight=10.0,
                    options={"one_sided": Option(False, boolean), "target": Option(1.0, non_negative)})
class GradientPenalty(Penalty):
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): λ E_x̂ (‖∇_x̂ D(x̂)‖₂ − target)², default λ = 10.

    x̂ = ε x + (1 − ε) x̃ with ONE ε ~ U(0, 1) per sample (x real, x̃ generated), and one norm per
    sample over all its non-batch dimensions. ``one_sided`` uses E max(0, ‖∇‖ − target)² (the paper's
    one-sided variant, appendix); ``target`` defaults to 1.
    """

    name = "gp"
    one_sided: bool
    target: float

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        _same_shape(self.name, real, fake)
        real, fake = real.detach(), fake.detach()
        eps = _per_sample_uniform(real)
        x_hat = eps * real + (1 - eps) * fake
        gap = per_sample_norms(input_gradients(D, x_hat)) - self.target
        if self.one_sided:
            gap = gap.clamp(min=0)
        return self.weight * gap.square().mean()


@PENALTIES.register("dragan", weight=10.0, options={"scale": Option(0.5, non_negative)})
class DRAGANPenalty(Penalty):
    """DRAGAN (Kodali et al. 2017): a gradient penalty around the real data, default λ = 10.

    Variant used (the authors' reference code): x_p = x + α·δ with α ~ U(0, 1) per sample and
    δ = ``scale`` · std(x) · u, where std(x) is the (population) standard deviation of the whole real
    batch, a scalar, ``scale`` = 0.5, and u ~ U(0, 1) per element (one-sided, not clipped);
    penalty λ E (‖∇_x D(x_p)‖₂ − 1)² with per-sample norms.
    """

    name = "dragan"
    scale: float

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        real = real.detach()
        delta = self.scale * real.std(correction=0) * torch.rand_like(real)
        x_p = real + _per_sample_uniform(real) * delta
        gap = per_sample_norms(input_gradients(D, x_p)) - 1
        return self.weight * gap.square().mean()


@PENALTIES.register("r1", weight=10.0)
class R1Penalty(Penalty):
    """R1 (Mescheder et al. 2018, eq. 9): γ/2 · E_x ‖∇_x D(x)‖² on REAL data, default γ = 10.

    ``weight`` is γ and the ½ is applied here (some code drops it: its γ is our γ/2).
    """

    name = "r1"

    def _data(self, real: Tensor, fake: Tensor) -> Tensor:
        return real

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        grad = input_gradients(D, self._data(real, fake))
        return 0.5 * self.weight * grad.square().reshape(grad.shape[0], -1).sum(1).mean()


@PENALTIES.register("r2", weight=10.0)
class R2Penalty(R1Penalty):
    """R2 (Mescheder et al. 2018, eq. 10): γ/2 · E ‖∇_x D(x)‖² on GENERATED data (detached from G),
    default γ = 10."""

    name = "r2"

    def _data(self, real: Tensor, fake: Tensor) -> Tensor:
        return fake


@PENALTIES.register("clip", weight=0.01)
class WeightClipping(Penalty):
    """WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1): after each D update every D
    parameter is clamped to [−c, c]; ``weight`` is c, default 0.01. Adds nothing to the loss."""

    name = "clip"

    def __init__(self, weight: float | None = None, **options: Any) -> None:
        super().__init__(weight, **options)
        positive("loss.clip_weight", self.weight)  # a clipping bound of 0 would zero D

    def after_step(self, D: nn.Module) -> None:
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-self.weight, self.weight)


def penalty_options(name: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"weight": ..., **options}`` of penalty ``name``, validated and filled with the declared defaults
    (unknown names and options: a :class:`ConfigError` naming the valid ones)."""
    entry = PENALTIES.get(name, key="loss.penalty")
    facts = PENALTIES.facts(name)
    given = dict(given or {})
    weight = given.pop("weight", None)
    default = facts.get("weight", getattr(entry, "default_weight", 0.0))
    weight = non_negative(f"loss.penalty.{name}.weight", default if weight is None else weight)
    declared = facts.get("options", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        valid = ", ".join(["weight", *sorted(declared)])
        raise ConfigError(f"loss.penalty.{name}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
    return {"weight": weight, **check_options(f"loss.penalty.{name}", given, declared)}


def build_penalty(name: str, weight: float | None = None, **options: Any) -> Penalty:
    """The registered penalty ``name`` with ``weight`` (``None``: its documented default) and options.

    Unknown names, options and invalid values raise :class:`ConfigError`.
    """
    entry = PENALTIES.get(name, key="loss.penalty")
    declared = PENALTIES.facts(name).get("options", {})
    unknown = sorted(set(options) - set(declared))
    if unknown:
        valid = ", ".join(sorted(declared)) or "none"
        raise ConfigError(f"loss.penalty: {name} has no option(s) {', '.join(unknown)} (valid: {valid})")
    if isinstance(entry, type) and issubclass(entry, Penalty):
        return entry(weight, **options)
    return FunctionPenalty(name, entry, weight, **options)


def build_penalties(spec: Any) -> list[Penalty]:
    """The penalties a config asks for, in order: ``spec`` is ``cfg.loss`` (its ``penalty`` mapping name →
    options, ``weight`` included), such a mapping, or a list of names (default settings)."""
    penalties = getattr(spec, "penalty", spec)
    if isinstance(penalties, str):
        penalties = [penalties]
    if not isinstance(penalties, Mapping):
        penalties = {name: {} for name in (penalties or ())}
    out = []
    for name, given in penalties.items():
        settings = dict(given or {})
        weight = settings.pop("weight", None)
        out.append(build_penalty(name, weight, **settings))
    return out
