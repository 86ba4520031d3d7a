"""Metrics: a registry of functions ``(samples, dataset) -> {name: value}``.

Each entry computes its figures from generated samples and the real dataset; the training loop and
``saddlepoint eval`` look metrics up by name (``eval.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..registry import Registry
from .modes import mode_stats

MetricFn = Callable[[torch.Tensor, Any], dict[str, Any]]
METRICS: Registry[MetricFn] = Registry("metric")


@METRICS.register("modes")
def modes(samples: torch.Tensor, dataset: Any) -> dict[str, Any]:
    """PacGAN mode statistics of 2-D samples (see :mod:`saddlepoint.metrics.modes`)."""
    centers = getattr(dataset, "centers", None)
    if centers is None:
        from ..errors import ConfigError

        raise ConfigError("eval.metrics: 'modes' needs a 2-D mixture dataset with known centres (ring, grid)")
    return mode_stats(samples, centers, dataset.std)


def default_metrics(dataset: Any) -> list[str]:
    """Metrics computed when ``eval.metrics`` is empty."""
    return ["modes"] if getattr(dataset, "centers", None) is not None else []


def evaluate_metrics(names: list[str], samples: torch.Tensor, dataset: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in names:
        results.update(METRICS.get(name, "eval.metrics")(samples, dataset))
    return results


__all__ = ["METRICS", "default_metrics", "evaluate_metrics", "mode_stats"]
