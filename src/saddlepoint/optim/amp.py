"""Dynamic loss scaling for float16 autocast, for every game optimizer (first order to ACGD).

torch's ``GradScaler`` acts on the ``.grad`` fields of a ``torch.optim`` optimizer; the game optimizers
take their derivatives themselves (``torch.autograd.grad`` in :meth:`GameOptimizer.gradient` and in
:class:`~saddlepoint.optim.derivatives.GameDerivatives`), so the scaling is part of the game-optimizer
contract instead. With a :class:`LossScaler` attached (``opt.configure(scaler=...)``, or
:func:`attach_scaler`), held in ``opt.scaler`` and handed by the optimizer to the objects that take its
derivatives:

* every loss the closure returns is multiplied by the scale ``s`` before anything is differentiated
  (the losses reported by ``step`` are the unscaled ones), so float16 gradients of small losses do not
  underflow;
* every value a method receives is unscaled (×1/s, a power of two: exact) at the two places where
  derivatives leave the framework: each gradient from ``GameOptimizer.gradient`` and each gradient or
  second-derivative product (exact or finite-difference) from ``GameDerivatives`` — after the
  data-parallel average, so every rank sees the same values and takes the same decision;
* the first non-finite unscaled value aborts the step (:class:`NonFiniteGradients`): the optimizer puts
  back the parameters, its state (moments, step counts for bias correction, warm starts, past
  gradients), its step counter, the registered buffers (BatchNorm statistics) and the logged gradient
  norms as they were before the step; ``opt.last_step_skipped`` is True and the scale is halved;
* after ``growth_interval`` consecutive applied steps the scale doubles.

The scaler's state (scale, clean-step counter, number of skipped steps) is part of the optimizer's
``state_dict``, so a resumed run continues bit-identically. Cost accounting (``counts``) includes the
work of skipped steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["LossScaler", "NonFiniteGradients", "attach_scaler"]


class NonFiniteGradients(Exception):
    """Raised inside a step when an unscaled gradient or product is not finite (the step is skipped)."""


class LossScaler:
    """One dynamic loss scale shared by all players (GradScaler semantics).

    ``init_scale`` 2**16, ``growth_factor`` 2, ``backoff_factor`` 0.5, ``growth_interval`` 2000 applied
    steps between growths — torch's defaults. ``enabled=False`` makes it an identity (scale 1, never
    skips), so code can hold one unconditionally.
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        for name, value, ok in (
            ("init_scale", init_scale, lambda v: v > 0),
            ("growth_factor", growth_factor, lambda v: v > 1),
            ("backoff_factor", backoff_factor, lambda v: 0 < v < 1),
        ):
            number = not isinstance(value, bool) and isinstance(value, (int, float))
            if not number or not math.isfinite(value) or not ok(value):
                raise ConfigError(f"amp scaler: bad {name} {value!r}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval < 1:
            raise ConfigError(f"amp scaler: growth_interval must be a positive integer, got {growth_interval!r}")
        self.enabled = bool(enabled)
        self.scale = float(init_scale) if enabled else 1.0
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = growth_interval
        #: applied steps since the scale last changed
        self.clean_steps = 0
        #: steps skipped so far (non-finite gradients)
        self.skipped = 0

    # ------------------------------------------------------------------ inside a step
    def scale_losses(self, losses: Sequence[Tensor]) -> Sequence[Tensor]:
        """×scale, lazily per loss (a lazy closure's losses stay lazy: a player's loss is computed, and
        scaled, only when it is used)."""
        if not self.enabled:
            return losses
        return _Scaled(losses, self.scale)

    def unscale(self, tensors: Sequence[Tensor]) -> list[Tensor]:
        """×1/scale (keeps any autograd graph, so derivatives through the result are unscaled too)."""
        if not self.enabled:
            return list(tensors)
        inv = 1.0 / self.scale
        return [t * inv for t in tensors]

    def check(self, tensors: Sequence[Tensor]) -> None:
        """Raise :class:`NonFiniteGradients` if any entry is inf or NaN (max-norm per tensor: no overflow
        for finite values; one host synchronisation per call)."""
        if not self.enabled:
            return
        tensors = [t.detach() for t in tensors if t.numel()]
        if not tensors:
            return
        norms = torch._foreach_norm(tensors, math.inf)
        if not bool(torch.isfinite(torch.stack([n.float() for n in norms])).all()):
            raise NonFiniteGradients

    # ------------------------------------------------------------------ after a step
    def update(self, found_inf: bool) -> None:
        """Back off (×backoff_factor) after a skipped step, grow (×growth_factor) after
        ``growth_interval`` consecutive applied ones."""
        if not self.enabled:
            return
        if found_inf:
            self.scale *= self.backoff_factor
            self.clean_steps = 0
            self.skipped += 1
            return
        self.clean_steps += 1
        if self.clean_steps >= self.growth_interval:
            grown = self.scale * self.growth_factor
            if math.isfinite(grown):
                self.scale = grown
            self.clean_steps = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "clean_steps": self.clean_steps, "skipped": self.skipped,
                "growth_interval": self.growth_interval}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.scale = float(state["scale"])
        self.clean_steps = int(state["clean_steps"])
        self.skipped = int(state.get("skipped", 0))

    def __repr__(self) -> str:
        return f"LossScaler(scale={self.scale}, clean_steps={self.clean_steps}, skipped={self.skipped})"


def attach_scaler(opt: Any, scaler: LossScaler | None) -> None:
    """Set ``scaler`` on a game optimizer, keeping its ``reduce``: ``opt.configure(scaler=scaler,
    reduce=opt.reduce)`` (a wrapper such as lookahead forwards it to the optimizer it wraps: one scale for
    the whole game)."""
    opt.configure(scaler=scaler, reduce=opt.reduce)


class _Scaled(Sequence[Tensor]):
    """``losses[i] * scale``, computed on access."""

    def __init__(self, losses: Sequence[Tensor], scale: float) -> None:
        self._losses, self._scale = losses, scale

    def __len__(self) -> int:
        return len(self._losses)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._losses[index] * self._scale
