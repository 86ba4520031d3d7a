"""Exponential moving average of the generator (Karras et al. 2018; Yazıcı et al. 2019).

Parameters are averaged, θ̄ ← β_t θ̄ + (1 − β_t) θ with the warm-up β_t = min(β, (1 + t)/(10 + t))
(as TensorFlow's ExponentialMovingAverage with ``num_updates``), so early in training the average is
not dominated by the random initial generator; BatchNorm running statistics (floating buffers) are
averaged the same way and integer buffers (``num_batches_tracked``) copied, so the averaged generator
is usable in eval mode without recomputing statistics.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``self.module``, an averaged copy of ``source``."""

    def __init__(self, source: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"train.ema: decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(source).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_params = list(self.module.parameters())
        src_params = list(source.parameters())
        torch._foreach_lerp_(ema_params, src_params, 1.0 - decay)
        for ema_buf, buf in zip(self.module.buffers(), source.buffers()):
            if buf.is_floating_point():
                ema_buf.lerp_(buf, 1.0 - decay)
            else:
                ema_buf.copy_(buf)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
