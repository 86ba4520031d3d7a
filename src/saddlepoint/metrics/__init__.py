"""Metrics: a registry of functions ``(samples, dataset, ctx) -> {name: value}``.

Each entry computes its figures from generated samples and the real dataset; the training loop and
``saddlepoint eval`` look metrics up by name (``eval.metrics``) through :func:`evaluate_metrics`.
``ctx`` (:class:`EvalContext`) holds the evaluation settings (``eval.*``), the feature network and the
cached real statistics, and computes the generated samples' features once for all metrics of a call.

Registered: ``fid``, ``kid``, ``is``, ``prdc`` (features: see :mod:`.features`), ``modes`` (2-D
mixtures), ``stacked-modes`` (Stacked MNIST). Conventions: ``docs/metrics.md``.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

import torch

from ..config import EvalConfig
from ..errors import ConfigError
from ..registry import Registry
from .features import (
    FeatureExtractor,
    RealStats,
    StatsCache,
    as_extractor,
    classify_digits,
    default_cache_dir,
    feature_stats,
    images_digest,
    is_stacked,
    load_mnist_classifier,
    resolve_extractor,
    stats_key,
)
from .frechet import fid_from_features, frechet_distance
from .inception_score import inception_score
from .kid import kid as kid_score
from .kid import mmd2_unbiased
from .modes import mode_stats, stacked_mode_stats
from .prdc import prdc

MetricFn = Callable[..., dict[str, Any]]
METRICS: Registry[MetricFn] = Registry("metric")

#: the figure each metric is judged by (for a "best" checkpoint): metric name → (result key, direction)
PRIMARY: dict[str, tuple[str, str]] = {
    "fid": ("fid", "min"),
    "kid": ("kid", "min"),
    "stacked-modes": ("kl", "min"),
    "modes": ("kl", "min"),
    "is": ("is", "max"),
    "prdc": ("coverage", "max"),
}
_PRIORITY = ["fid", "kid", "stacked-modes", "modes", "is", "prdc"]
FEATURE_METRICS = frozenset({"fid", "kid", "prdc", "is"})


def primary_metric(names: list[str]) -> tuple[str, str] | None:
    """(result key, "min" | "max") of the metric that ranks checkpoints among ``names``: the first of
    fid, kid, stacked-modes, modes, is, prdc that is present; None if none is."""
    for name in _PRIORITY:
        if name in names:
            return PRIMARY[name]
    return None


# ------------------------------------------------------------------------------------ the context
_REAL: weakref.WeakKeyDictionary[Any, dict[tuple, RealStats]] = weakref.WeakKeyDictionary()


class EvalContext:
    """Settings and shared work of one evaluation: the extractor, real statistics, generated features."""

    def __init__(self, cfg: EvalConfig | None = None, *, features: Any = None,
                 device: torch.device | str | None = None) -> None:
        self.cfg = cfg if cfg is not None else EvalConfig()
        self.features_override = features
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._extractor: FeatureExtractor | None = None
        self._fake: dict[str, torch.Tensor] = {}
        for key in ("real_samples", "prdc_k", "kid_subsets", "kid_subset_size", "is_splits"):
            value = getattr(self.cfg, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"eval.{key}: must be a positive integer, got {value!r}")

    # -- extractor
    def extractor(self, dataset: Any) -> FeatureExtractor:
        if self._extractor is None:
            spec = self.features_override if self.features_override is not None else self.cfg.features
            ext = resolve_extractor(spec, dataset, self.cfg.inception_path)
            if self.device.type != "cpu":
                ext = ext.to(self.device)
            self._extractor = ext
        return self._extractor

    def cache(self) -> StatsCache:
        d = self.cfg.cache_dir
        if d is not None and d.strip().lower() in ("none", "off", ""):
            return StatsCache(None)
        return StatsCache(default_cache_dir() if d is None else d)

    # -- real data
    def reference_images(self, dataset: Any) -> tuple[torch.Tensor, str]:
        """The reference images (all, or a fixed seeded subset of ``eval.real_samples``) and how chosen."""
        images = getattr(dataset, "images", None)
        if images is None:
            raise ConfigError(
                f"eval.metrics: feature metrics need an image dataset, {getattr(dataset, 'name', '?')!r} has none"
            )
        n = len(images)
        if n <= self.cfg.real_samples:
            return images, f"all:{n}"
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(0))[: self.cfg.real_samples].sort().values
        return images[idx], f"perm-seed0:{self.cfg.real_samples}"

    def real_stats(self, dataset: Any) -> RealStats:
        """Real features and statistics: from memory, the disk cache, or computed (then cached)."""
        ext = self.extractor(dataset)
        memo_key = (ext.identity, ext.preprocess, self.cfg.real_samples)
        memo: dict[tuple, RealStats] = {}
        if ext.identity is not None:  # an extractor without identity is never reused across calls
            try:
                memo = _REAL.setdefault(dataset, {})
            except TypeError:  # not weak-referenceable
                pass
        if memo_key in memo:
            return memo[memo_key]
        images, selection = self.reference_images(dataset)
        cache = self.cache() if ext.identity is not None else StatsCache(None)
        key = stats_key(getattr(dataset, "name", "?"), len(dataset.images), images_digest(images), ext,
                        len(images), selection)
        stats = cache.get(key)
        if stats is None:
            feats = ext.features(images)
            mu, sigma = feature_stats(feats)
            stats = RealStats(feats, mu, sigma)
            cache.put(key, stats)
        memo[memo_key] = stats
        return stats

    # -- generated samples
    def fake_features(self, samples: torch.Tensor, dataset: Any) -> torch.Tensor:
        if "features" not in self._fake:
            self._fake["features"] = self.extractor(dataset).features(samples)
        return self._fake["features"]

    def fake_logits(self, samples: torch.Tensor, dataset: Any) -> torch.Tensor:
        if "logits" not in self._fake:
            self._fake["logits"] = self.extractor(dataset).logits(samples)
        return self._fake["logits"]

    def set_fake(self, kind: str, values: torch.Tensor) -> None:
        """Provide the generated samples' ``features`` or ``logits`` computed elsewhere (sharded
        evaluation: each rank extracts its share, the rows are gathered in sample order)."""
        if kind not in ("features", "logits"):
            raise ValueError(f"set_fake: kind must be 'features' or 'logits', got {kind!r}")
        self._fake[kind] = values

    def describe(self, dataset: Any, n_samples: int) -> dict[str, Any]:
        """What the feature metrics of this context used: network, preprocessing, sample counts."""
        ext = self.extractor(dataset)
        images, selection = self.reference_images(dataset)
        return {"features": ext.name, "feature_identity": ext.identity, "preprocess": ext.preprocess,
                "real_samples": len(images), "real_selection": selection, "samples": n_samples}


def _need(n: int, at_least: int, metric: str) -> None:
    if n < at_least:
        raise ConfigError(f"eval.samples: '{metric}' needs at least {at_least} generated samples, got {n}")


# ------------------------------------------------------------------------------------------ entries
@METRICS.register("modes")
def modes(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """PacGAN mode statistics of 2-D samples (see :mod:`saddlepoint.metrics.modes`)."""
    centers = getattr(dataset, "centers", None)
    if centers is None:
        raise ConfigError("eval.metrics: 'modes' needs a 2-D mixture dataset with known centres (ring, grid)")
    return mode_stats(samples, centers, dataset.std)


@METRICS.register("stacked-modes")
def metric_stacked_modes(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Stacked-MNIST modes covered and KL to uniform over 1,000 classes (shipped classifier per channel)."""
    if samples.ndim != 4 or samples.shape[1] != 3:
        raise ConfigError(
            f"eval.metrics: 'stacked-modes' needs 3-channel images (Stacked MNIST), got shape {tuple(samples.shape)}"
        )
    d = classify_digits(samples)
    return stacked_mode_stats(d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2])


@METRICS.register("fid")
def metric_fid(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Fréchet distance between generated and real feature statistics (Heusel et al. 2017)."""
    ctx = ctx or EvalContext()
    _need(len(samples), 2, "fid")
    real = ctx.real_stats(dataset)
    mu, sigma = feature_stats(ctx.fake_features(samples, dataset))
    return {"fid": frechet_distance(real.mu, real.sigma, mu, sigma)}


@METRICS.register("kid")
def metric_kid(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Kernel Inception Distance (Bińkowski et al. 2018): mean and std over seeded subsets."""
    ctx = ctx or EvalContext()
    _need(len(samples), 2, "kid")
    real = ctx.real_stats(dataset)
    return kid_score(real.features, ctx.fake_features(samples, dataset), subsets=ctx.cfg.kid_subsets,
                     subset_size=ctx.cfg.kid_subset_size, seed=0)


@METRICS.register("prdc")
def metric_prdc(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem et al. 2020); the real
    features are a seeded subset of as many points as there are generated samples."""
    ctx = ctx or EvalContext()
    k = ctx.cfg.prdc_k
    _need(len(samples), k + 1, "prdc")
    real = ctx.real_stats(dataset).features
    fake = ctx.fake_features(samples, dataset)
    if len(real) > len(fake):
        real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[: len(fake)]]
    return prdc(real, fake, k=k)


@METRICS.register("is")
def metric_is(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Inception Score (Salimans et al. 2016) from the feature network's logits, ``eval.is_splits``."""
    ctx = ctx or EvalContext()
    _need(len(samples), ctx.cfg.is_splits, "is")
    return inception_score(ctx.fake_logits(samples, dataset), splits=ctx.cfg.is_splits)


# ------------------------------------------------------------------------------------------- API
def default_metrics(dataset: Any, cfg: EvalConfig | None = None) -> list[str]:
    """Metrics computed when ``eval.metrics`` is empty: ``modes`` for 2-D mixtures, ``fid`` and
    ``stacked-modes`` for Stacked MNIST, ``fid`` for grey images (shipped MNIST features) and for other
    images when a feature network is configured (``eval.features`` / ``eval.inception_path``)."""
    if getattr(dataset, "centers", None) is not None:
        return ["modes"]
    if getattr(dataset, "kind", "") != "images":
        return []
    if is_stacked(dataset):
        return ["fid", "stacked-modes"]
    shape = tuple(getattr(dataset, "sample_shape", ()))
    if shape[:1] == (1,):
        return ["fid"]
    if cfg is not None and (cfg.inception_path or (cfg.features not in (None, "auto"))):
        return ["fid"]
    return []


def check_metrics(names: list[str], dataset: Any, cfg: EvalConfig | None = None, *, features: Any = None) -> None:
    """Fail early (``ConfigError``, before training) if a metric name is unknown, a feature network is
    missing or unusable (e.g. ``eval.inception_path`` absent), or a metric does not fit the dataset."""
    for name in names:
        METRICS.get(name, "eval.metrics")
    ctx = EvalContext(cfg, features=features)
    if "modes" in names and getattr(dataset, "centers", None) is None:
        raise ConfigError("eval.metrics: 'modes' needs a 2-D mixture dataset with known centres (ring, grid)")
    if "stacked-modes" in names and tuple(getattr(dataset, "sample_shape", ()))[:1] != (3,):
        raise ConfigError("eval.metrics: 'stacked-modes' needs 3-channel images (Stacked MNIST)")
    if FEATURE_METRICS.intersection(names):
        if getattr(dataset, "kind", "") != "images":
            raise ConfigError(f"eval.metrics: {sorted(FEATURE_METRICS.intersection(names))} need an image dataset")
        ctx.extractor(dataset)


def _call(fn: MetricFn, samples: torch.Tensor, dataset: Any, ctx: EvalContext) -> dict[str, Any]:
    try:
        n_params = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        n_params = 3
    return fn(samples, dataset, ctx) if n_params >= 3 else fn(samples, dataset)


def evaluate_metrics(
    names: list[str], samples: torch.Tensor, dataset: Any, cfg: EvalConfig | None = None, *,
    features: Any = None, device: torch.device | str | None = None, context: EvalContext | None = None,
) -> dict[str, Any]:
    """Compute the named metrics of ``samples`` against ``dataset`` with the settings ``cfg`` (``eval.*``;
    defaults when None). ``features`` overrides ``eval.features`` with any nn.Module or callable;
    ``context`` an :class:`EvalContext` to use (e.g. with the generated features already set)."""
    metric_fns = [METRICS.get(name, "eval.metrics") for name in names]
    ctx = context if context is not None else EvalContext(cfg, features=features, device=device)
    results: dict[str, Any] = {}
    for fn in metric_fns:
        results.update(_call(fn, samples, dataset, ctx))
    return results


def evaluation_protocol(
    names: list[str], dataset: Any, n_samples: int, cfg: EvalConfig | None = None, *, features: Any = None
) -> dict[str, Any]:
    """What the feature metrics among ``names`` use (network, preprocessing, real/generated sample
    counts), to record beside the numbers; {} if none of them needs features."""
    if not FEATURE_METRICS.intersection(names):
        return {}
    return EvalContext(cfg, features=features).describe(dataset, n_samples)


__all__ = [
    "METRICS",
    "PRIMARY",
    "EvalContext",
    "FeatureExtractor",
    "as_extractor",
    "check_metrics",
    "default_metrics",
    "evaluate_metrics",
    "evaluation_protocol",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "kid_score",
    "load_mnist_classifier",
    "mmd2_unbiased",
    "mode_stats",
    "prdc",
    "primary_metric",
    "stacked_mode_stats",
]
