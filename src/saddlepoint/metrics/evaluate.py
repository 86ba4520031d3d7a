"""The metric registry with its facts, the evaluation context, and ``evaluate_metrics``.

A metric is a function ``(samples, dataset, ctx) -> {key: value}`` registered in its family's file with
the facts every other layer reads (nothing else lists metrics)::

    @METRICS.register("kid", best={"kid": "min", "kid_std": None}, primary="kid", needs="features",
                      kinds=("images",), priority=2, column=4)
    def kid_metric(samples, dataset, ctx): ...

Facts: ``best`` — the direction of every key the metric emits (``"min"``, ``"max"`` or None: no better
or worse); ``primary`` — the key a "best" checkpoint is judged by; ``needs`` — ``"features"`` or
``"logits"`` from the feature network, or None; ``kinds`` — the data kinds it applies to (``"points"``,
``"images"``); ``check`` — an optional ``check(dataset)`` that raises :class:`ConfigError` when the
dataset does not fit (called before training); ``priority`` — the order in which the primary metric of
a run is chosen (lower first); ``column`` — the position of its keys in comparison tables (lower
first); ``rank`` — the keys that rank a comparison table led by its first key (default: that key).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import EvalConfig
from ..errors import ConfigError
from ..registry import Registry
from .extractors import FeatureExtractor, is_stacked, resolve_extractor
from .stats import REAL_STATS, RealStats, default_cache_dir

MetricFn = Callable[..., dict[str, Any]]
DIRECTIONS = ("min", "max", None)
NEEDS = (None, "features", "logits")
KINDS = ("points", "images")


class MetricRegistry(Registry[MetricFn]):
    """The metric registry: validates each metric's facts at registration (see the module docstring)."""

    def check_facts(self, name: str, obj: MetricFn, facts: dict[str, Any]) -> dict[str, Any]:
        best = facts.get("best")
        if not isinstance(best, Mapping) or not best or any(d not in DIRECTIONS for d in best.values()):
            raise ValueError(f"metric {name!r}: best must map each emitted key to 'min', 'max' or None")
        facts["best"] = dict(best)
        primary = facts.setdefault("primary", None)
        if primary is not None and best.get(primary) is None:
            raise ValueError(f"metric {name!r}: primary {primary!r} needs a direction in best")
        if facts.setdefault("needs", None) not in NEEDS:
            raise ValueError(f"metric {name!r}: needs must be one of {NEEDS}")
        kinds = tuple(facts.setdefault("kinds", KINDS))
        if not kinds or any(k not in KINDS for k in kinds):
            raise ValueError(f"metric {name!r}: kinds must be a non-empty subset of {KINDS}")
        facts["kinds"] = kinds
        facts["rank"] = tuple(facts.get("rank") or (next(iter(best)),))
        facts.setdefault("check", None)
        facts.setdefault("priority", None)
        facts.setdefault("column", None)
        for key, way in best.items():
            other = direction(key)
            if key in emitted_keys() and other != way:
                raise ValueError(f"metric {name!r}: {key!r} is {way!r} here but {other!r} for another metric")
        return facts


METRICS = MetricRegistry("metric")


# ---------------------------------------------------------------------------------- facts, derived
def _ordered(fact: str) -> list[str]:
    """Registered metrics by a numeric fact (those without it last), then registration order."""
    names = METRICS.registered()
    return sorted(names, key=lambda n: (METRICS.fact(n, fact) is None, METRICS.fact(n, fact) or 0,
                                        names.index(n)))


def emitted_keys() -> list[str]:
    """Every result key some metric emits, in table column order."""
    keys: list[str] = []
    for name in _ordered("column"):
        keys.extend(k for k in METRICS.fact(name, "best") if k not in keys)
    return keys


def direction(key: str) -> str | None:
    """``"min"`` or ``"max"`` if a smaller or larger value of result key ``key`` is better; None if
    neither (``kid_std``) or no metric emits it."""
    for name in METRICS.registered():
        best = METRICS.fact(name, "best")
        if key in best:
            return best[key]
    return None


def is_better(key: str, new: float, old: float | None) -> bool:
    """Whether ``new`` improves on ``old`` (None: nothing yet) for result key ``key`` (strictly)."""
    way = direction(key)
    if way is None:
        raise ValueError(f"result key {key!r} has no direction (no metric declares one)")
    return old is None or (new < old if way == "min" else new > old)


def primary_metric(names: Iterable[str]) -> tuple[str, str] | None:
    """(result key, "min" | "max") that ranks checkpoints among the metrics ``names``: the primary key of
    the one with the lowest ``priority`` (fid, kid, stacked-modes, modes, is, prdc); None if none has one."""
    present = {METRICS.canonical(n) for n in names if n in METRICS}
    for name in _ordered("priority"):
        primary = METRICS.fact(name, "primary")
        if name in present and primary is not None:
            return primary, METRICS.fact(name, "best")[primary]
    return None


def extraction_needs(names: Iterable[str]) -> list[str]:
    """What the feature network must compute from the generated samples for the metrics ``names``:
    a sublist of ``["features", "logits"]`` (for sharded evaluation: each rank extracts its share)."""
    needs = {METRICS.fact(n, "needs") for n in names if n in METRICS}
    return [kind for kind in ("features", "logits") if kind in needs]


def metric_columns(keys: Iterable[str]) -> list[str]:
    """``keys`` (result keys found in runs) in table order: the metrics' keys by ``column``, then the
    rest alphabetically."""
    present = set(keys)
    known = emitted_keys()
    return [k for k in known if k in present] + sorted(present - set(known))


def table_ranking(columns: Sequence[str]) -> list[tuple[str, bool]]:
    """The keys that rank a comparison table with ``columns`` (in :func:`metric_columns` order), as
    ``(key, higher is better)``: the ``rank`` keys of the metric whose key leads the table (e.g. modes
    covered, then KL), those present; a key no metric declares ranks lowest first."""
    if not columns:
        return []
    lead = columns[0]
    owner = next((n for n in _ordered("column") if lead in METRICS.fact(n, "best")), None)
    rank = [k for k in METRICS.fact(owner, "rank") if k in columns] if owner is not None else []
    if not rank or rank[0] != lead:
        rank = [lead]
    return [(k, direction(k) == "max") for k in rank]


def metric_kinds(key: str) -> set[str]:
    """The data kinds of the metrics that emit result key ``key`` (empty if none does)."""
    return {kind for n in METRICS.registered() if key in METRICS.fact(n, "best") for kind in METRICS.fact(n, "kinds")}


# ------------------------------------------------------------------------------------ the context
class EvalContext:
    """Settings and shared work of one evaluation: the extractor, real statistics, generated features."""

    def __init__(self, cfg: EvalConfig | None = None, *, features: Any = None,
                 device: torch.device | str | None = None) -> None:
        self.cfg = cfg if cfg is not None else EvalConfig()
        self.features_override = features
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._extractor: FeatureExtractor | None = None
        self._real: RealStats | None = None
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

    def cache_dir(self) -> Path | None:
        """Where real statistics are cached on disk (``eval.cache_dir``; none/off: memory only)."""
        d = self.cfg.cache_dir
        if d is not None and d.strip().lower() in ("none", "off", ""):
            return None
        return default_cache_dir() if d is None else Path(d).expanduser()

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
        """Real features and statistics: from the process's cache, the disk cache, or computed (then cached)."""
        if self._real is None:
            self._real = REAL_STATS.fetch(dataset, self.extractor(dataset), self.cfg.real_samples, self.cache_dir(),
                                          lambda: self.reference_images(dataset))
        return self._real

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


def need_samples(n: int, at_least: int, metric: str) -> None:
    """ConfigError unless ``n`` generated samples reach the ``at_least`` that ``metric`` needs."""
    if n < at_least:
        raise ConfigError(f"eval.samples: '{metric}' needs at least {at_least} generated samples, got {n}")


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
    """Fail early (``ConfigError``, before training) if a metric name is unknown, does not apply to the
    dataset's kind or shape (its ``kinds`` and ``check`` facts), or needs what the feature network cannot
    give: a network that is missing or unusable (e.g. ``eval.inception_path`` absent), or logits from a
    network without them (``is`` with a plain feature network)."""
    facts = [METRICS.facts(name, "eval.metrics") for name in names]
    ctx = EvalContext(cfg, features=features)
    kind = getattr(dataset, "kind", "")
    for name, fact in zip(names, facts):
        if kind not in fact["kinds"]:
            raise ConfigError(f"eval.metrics: {name!r} needs {' or '.join(fact['kinds'])} data, "
                              f"{getattr(dataset, 'name', '?')!r} is {kind or 'neither'}")
        if fact["check"] is not None:
            fact["check"](dataset)
    for name, fact in zip(names, facts):
        if fact["needs"] is not None:
            ext = ctx.extractor(dataset)
            if fact["needs"] == "logits" and not ext.has_logits:
                raise ConfigError(f"eval.metrics: {name!r} needs class logits, but the feature network "
                                  f"{ext.name!r} gives none (use eval.features=mnist or an Inception file with logits)")


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


evaluate = evaluate_metrics


def evaluation_protocol(
    names: list[str], dataset: Any, n_samples: int, cfg: EvalConfig | None = None, *, features: Any = None
) -> dict[str, Any]:
    """What the feature metrics among ``names`` use (network, preprocessing, real/generated sample
    counts), to record beside the numbers; {} if none of them needs the feature network."""
    if not extraction_needs(names):
        return {}
    return EvalContext(cfg, features=features).describe(dataset, n_samples)
