"""Gradient health: per-layer gradient norms of both players at every log, and a warning when they vanish or explode.

The optimizer records, with every gradient it takes, the norm of each parameter tensor's gradient before clipping
(``opt.last_layer_norms[i]``; a backpropagated gradient or a zeroth-order estimate, averaged over data-parallel
workers, so the same on every rank). Here the tensors are grouped into **layers** (the module that owns them:
``net.0.weight`` and ``net.0.bias`` make layer ``net.0``; a layer's norm is the root sum of squares of its
tensors') and each log record gets, per player, the compact summary::

    "grad_layers": {"G": {"min": …, "median": …, "max": …, "first": …, "last": …, "min_layer": "net.6",
                          "max_layer": "net.0"}, "D": {…}}

(``first``/``last``: the input and output layers, in the order of the module's parameters). A nested mapping, so
tools that read the numeric fields of a record as metrics leave it alone.

**Warning.** When a player's smallest layer norm stays below ``log.grad_low`` (vanishing) or its largest above
``log.grad_high`` (exploding) for ``log.grad_patience`` consecutive logs, one line goes to stderr (main process)
and into that log record as ``"warning"``, naming the player, the layer and its norm; it is not repeated until the
condition has cleared. The counters start afresh on resume.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import torch
from torch import nn

__all__ = ["GradientHealth", "layer_names", "layer_summary"]


def layer_names(module: nn.Module) -> list[str]:
    """The layer (owning module's path; ``"(root)"`` for a parameter of the module itself) of each trainable
    parameter tensor, in the order of ``module.parameters()``."""
    return [name.rpartition(".")[0] or "(root)" for name, p in module.named_parameters() if p.requires_grad]


def layer_summary(tensor_norms: torch.Tensor, names: list[str]) -> dict[str, Any] | None:
    """Per-layer norms from per-tensor norms → ``{min, median, max, first, last, min_layer, max_layer}``."""
    values = [float(v) for v in tensor_norms.detach().double().cpu()]
    if not values or len(values) != len(names):
        return None
    layers: dict[str, float] = {}
    for name, value in zip(names, values, strict=True):
        layers[name] = layers.get(name, 0.0) + value * value
    norms = {name: math.sqrt(total) for name, total in layers.items()}
    order = list(norms)
    low = min(order, key=lambda n: norms[n])
    high = max(order, key=lambda n: norms[n])
    return {"min": norms[low], "median": median(norms.values()), "max": norms[high], "first": norms[order[0]],
            "last": norms[order[-1]], "min_layer": low, "max_layer": high}


@dataclass
class GradientHealth:
    """Summaries and warnings for the players ``modules`` (name → module, in the optimizer's player order)."""

    modules: Mapping[str, nn.Module]
    low: float = 1e-7
    high: float = 1e4
    patience: int = 5
    main: bool = True
    _names: dict[str, list[str]] = field(init=False, default_factory=dict)
    _streak: dict[tuple[str, str], int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._names = {player: layer_names(module) for player, module in self.modules.items()}

    def record(self, opt: Any) -> dict[str, Any]:
        """The log entries for the optimizer's latest gradients: ``grad_layers`` and, when one fires, ``warning``."""
        norms = getattr(opt, "last_layer_norms", None) or []
        summaries: dict[str, dict[str, Any]] = {}
        warnings: list[str] = []
        for (player, names), tensor_norms in zip(self._names.items(), norms):
            summary = None if tensor_norms is None else layer_summary(tensor_norms, names)
            if summary is None:
                continue
            summaries[player] = summary
            for kind, bad, layer, value, bound in (
                ("vanishing", summary["min"] < self.low, summary["min_layer"], summary["min"], f"< {self.low:g}"),
                ("exploding", summary["max"] > self.high, summary["max_layer"], summary["max"], f"> {self.high:g}"),
            ):
                streak = self._streak.get((player, kind), 0) + 1 if bad else 0
                self._streak[(player, kind)] = streak
                if streak == self.patience:
                    warnings.append(f"gradient health: {player}'s gradients {kind}: layer {layer} norm {value:.3g} "
                                    f"{bound} for {self.patience} consecutive logs")
        entries: dict[str, Any] = {"grad_layers": summaries} if summaries else {}
        if warnings:
            entries["warning"] = "; ".join(warnings)
            if self.main:
                for line in warnings:
                    print(f"warning: {line}", file=sys.stderr)
        return entries
