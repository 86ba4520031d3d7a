"""Discriminator regularisers: gradient penalties and weight clipping.

A penalty is called as ``penalty(D, real, fake)`` and returns a *weighted* scalar to ADD to D's loss.
The input gradients it needs are taken with ``create_graph=True``, so the result can be
differentiated with respect to D's parameters and differentiated again (Hessian-vector products for
second-order game optimizers). Both batches are detached first: a penalty depends on D's parameters
only, never on G's. Random numbers come from torch's global generator.

Per-sample gradients are taken as ∇_x Σ_i D(x_i); this is the gradient of each D(x_i) with respect to
its own x_i only when D treats samples independently (no BatchNorm in D in training mode).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import Registry

PENALTIES: Registry[type[Penalty]] = Registry("penalty")


def _check_number(key: str, value: object, *, positive: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        need = "a positive number" if positive else "a non-negative number"
        raise ConfigError(f"{key}: expected {need}, got {value!r}")
    return float(value)


def _check_bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


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
    """Base class: no penalty. Subclasses set ``name`` and ``default_weight`` and override
    :meth:`__call__` and/or :meth:`after_step`."""

    name: str = "none"
    default_weight: float = 0.0

    def __init__(self, weight: float | None = None, **options: Any) -> None:
        if options:
            raise ConfigError(f"penalty {self.name}: unknown option(s) {', '.join(sorted(options))}")
        self.weight = _check_number(
            f"loss.{self.name}_weight", self.default_weight if weight is None else weight
        )

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """The weighted penalty, a scalar to add to D's loss."""
        return real.new_zeros(())

    def after_step(self, D: nn.Module) -> None:
        """Called after every update of D; default no-op."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight})"


@PENALTIES.register("gp")
class GradientPenalty(Penalty):
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): λ E_x̂ (‖∇_x̂ D(x̂)‖₂ − target)², default λ = 10.

    x̂ = ε x + (1 − ε) x̃ with ONE ε ~ U(0, 1) per sample (x real, x̃ generated), and one norm per
    sample over all its non-batch dimensions. ``one_sided`` uses E max(0, ‖∇‖ − target)² (the paper's
    one-sided variant, appendix); ``target`` defaults to 1.
    """

    name = "gp"
    default_weight = 10.0

    def __init__(self, weight: float | None = None, one_sided: bool = False, target: float = 1.0) -> None:
        super().__init__(weight)
        self.one_sided = _check_bool("loss.gp.one_sided", one_sided)
        self.target = _check_number("loss.gp.target", target)

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        _same_shape(self.name, real, fake)
        real, fake = real.detach(), fake.detach()
        eps = _per_sample_uniform(real)
        x_hat = eps * real + (1 - eps) * fake
        gap = per_sample_norms(input_gradients(D, x_hat)) - self.target
        if self.one_sided:
            gap = gap.clamp(min=0)
        return self.weight * gap.square().mean()


@PENALTIES.register("dragan")
class DRAGANPenalty(Penalty):
    """DRAGAN (Kodali et al. 2017): a gradient penalty around the real data, default λ = 10.

    Variant used (the authors' reference code): x_p = x + α·δ with α ~ U(0, 1) per sample and
    δ = ``scale`` · std(x) · u, where std(x) is the (population) standard deviation of the whole real
    batch, a scalar, ``scale`` = 0.5, and u ~ U(0, 1) per element (one-sided, not clipped);
    penalty λ E (‖∇_x D(x_p)‖₂ − 1)² with per-sample norms.
    """

    name = "dragan"
    default_weight = 10.0

    def __init__(self, weight: float | None = None, scale: float = 0.5) -> None:
        super().__init__(weight)
        self.scale = _check_number("loss.dragan.scale", scale)

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        real = real.detach()
        delta = self.scale * real.std(correction=0) * torch.rand_like(real)
        x_p = real + _per_sample_uniform(real) * delta
        gap = per_sample_norms(input_gradients(D, x_p)) - 1
        return self.weight * gap.square().mean()


@PENALTIES.register("r1")
class R1Penalty(Penalty):
    """R1 (Mescheder et al. 2018, eq. 9): γ/2 · E_x ‖∇_x D(x)‖² on REAL data, default γ = 10.

    ``weight`` is γ and the ½ is applied here (some code drops it: its γ is our γ/2).
    """

    name = "r1"
    default_weight = 10.0

    def _data(self, real: Tensor, fake: Tensor) -> Tensor:
        return real

    def __call__(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        grad = input_gradients(D, self._data(real, fake))
        return 0.5 * self.weight * grad.square().reshape(grad.shape[0], -1).sum(1).mean()


@PENALTIES.register("r2")
class R2Penalty(R1Penalty):
    """R2 (Mescheder et al. 2018, eq. 10): γ/2 · E ‖∇_x D(x)‖² on GENERATED data (detached from G),
    default γ = 10."""

    name = "r2"

    def _data(self, real: Tensor, fake: Tensor) -> Tensor:
        return fake


@PENALTIES.register("clip")
class WeightClipping(Penalty):
    """WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1): after each D update every D
    parameter is clamped to [−c, c]; ``weight`` is c, default 0.01. Adds nothing to the loss."""

    name = "clip"
    default_weight = 0.01

    def __init__(self, weight: float | None = None) -> None:
        super().__init__(weight)
        if self.weight <= 0:
            raise ConfigError(f"loss.clip_weight: expected a positive clipping bound, got {self.weight!r}")

    def after_step(self, D: nn.Module) -> None:
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-self.weight, self.weight)


def build_penalty(name: str, weight: float | None = None, **options: Any) -> Penalty:
    """The registered penalty ``name`` with ``weight`` (``None``: its documented default) and options.

    Unknown names, options and invalid values raise :class:`ConfigError`.
    """
    cls = PENALTIES.get(name, key="loss.penalty")
    accepted = set(list(inspect.signature(cls.__init__).parameters)[2:])
    unknown = sorted(set(options) - accepted)
    if unknown:
        valid = ", ".join(sorted(accepted)) or "none"
        raise ConfigError(f"loss.penalty: {name} has no option(s) {', '.join(unknown)} (valid: {valid})")
    return cls(weight, **options)
