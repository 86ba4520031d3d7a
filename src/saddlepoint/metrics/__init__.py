"""Metrics: a registry of functions ``(samples, dataset, ctx) -> {key: value}`` that carry their facts.

Each family file registers its metrics with their facts (see :mod:`.evaluate`): ``fid``
(:mod:`.frechet`), ``kid`` (:mod:`.kid`), ``is`` (:mod:`.inception_score`), ``prdc`` (:mod:`.prdc`),
``modes`` and ``stacked-modes`` (:mod:`.modes`). Feature networks: :mod:`.extractors`; real statistics
and their cache: :mod:`.stats`. The training loop, ``saddlepoint eval`` and comparison tables read the
facts through :func:`primary_metric`, :func:`is_better`, :func:`direction`, :func:`extraction_needs`,
:func:`check_metrics` and :func:`metric_columns`. Conventions: ``docs/metrics.md``.
"""

from __future__ import annotations

from ..models.classifier import load_mnist_classifier
from .evaluate import (
    METRICS,
    EvalContext,
    check_metrics,
    default_metrics,
    direction,
    emitted_keys,
    evaluate,
    evaluate_metrics,
    evaluation_protocol,
    extraction_needs,
    is_better,
    metric_columns,
    metric_kinds,
    need_samples,
    primary_metric,
    table_ranking,
)
from .extractors import FeatureExtractor, as_extractor, classify_digits, resolve_extractor
from .frechet import fid_from_features, frechet_distance
from .inception_score import inception_score
from .kid import kid as kid_score
from .kid import mmd2_unbiased
from .modes import mode_stats, stacked_mode_stats
from .prdc import prdc
from .stats import RealStats, feature_stats

__all__ = [
    "METRICS",
    "EvalContext",
    "FeatureExtractor",
    "RealStats",
    "as_extractor",
    "check_metrics",
    "classify_digits",
    "default_metrics",
    "direction",
    "emitted_keys",
    "evaluate",
    "evaluate_metrics",
    "evaluation_protocol",
    "extraction_needs",
    "feature_stats",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "is_better",
    "kid_score",
    "load_mnist_classifier",
    "metric_columns",
    "metric_kinds",
    "mmd2_unbiased",
    "mode_stats",
    "need_samples",
    "prdc",
    "primary_metric",
    "resolve_extractor",
    "stacked_mode_stats",
    "table_ranking",
]
