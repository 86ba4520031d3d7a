"""Evaluation during training: the metrics of ``eval.samples`` generated samples and the best checkpoint.

Every rank calls :func:`evaluate` at the same step. The samples come from the same global evaluation
noise for any world size (:func:`~.sampling.eval_noise`); under torchrun each rank generates its rows
and extracts their features, the rows are gathered in order and rank 0 computes the metrics (the world
decides, :meth:`~.world.World.sample_rows`). Directions and the primary key come from the metric registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..config import Config
from ..metrics import EvalContext, default_metrics, evaluate_metrics, extraction_needs, is_better, primary_metric
from .sampling import eval_noise
from .world import Extraction, World


def metric_names(cfg: Config, dataset: Any) -> list[str]:
    """``eval.metrics``, or the dataset's default metrics when it is empty."""
    return cfg.eval.metrics or default_metrics(dataset, cfg.eval)


def eval_samples(world: World, n: int, draw: Callable[[Tensor], Tensor], z_dim: int, seed: int,
                 extract: Sequence[Extraction] = ()) -> Tensor | None:
    """The ``n`` evaluation samples ``draw(z)`` of the run seeded ``seed`` (None on ranks other than 0)."""
    return world.sample_rows(n, lambda lo, hi: draw(eval_noise(n, z_dim, seed)[lo:hi]), extract)


def evaluate(cfg: Config, dataset: Any, world: World, device: torch.device, draw: Callable[[Tensor], Tensor],
             z_dim: int) -> dict[str, Any]:
    """The run's metrics of its generator ``draw`` on every rank's call; {} on ranks other than 0."""
    names = metric_names(cfg, dataset)
    if not names:
        return {}
    ctx = EvalContext(cfg.eval, device=device)
    extract = [((lambda rows, k=kind: getattr(ctx.extractor(dataset), k)(rows)),
                (lambda values, k=kind: ctx.set_fake(k, values))) for kind in extraction_needs(names)]
    samples = eval_samples(world, cfg.eval.samples, draw, z_dim, cfg.seed, extract)
    return world.on_main(lambda: evaluate_metrics(names, samples, dataset, cfg.eval, device=device, context=ctx), {})


def improved(names: list[str], metrics: dict[str, Any], best: dict[str, Any], step: int) -> dict[str, Any] | None:
    """The new best record ``{metric, mode, value, step}`` if ``metrics`` improve on ``best`` in the
    primary key of ``names``; None otherwise."""
    primary = primary_metric(names)
    if primary is None or primary[0] not in metrics:
        return None
    key, mode = primary
    value = float(metrics[key])
    if not is_better(key, value, best.get("value")):
        return None
    return {"metric": key, "mode": mode, "value": value, "step": step}
