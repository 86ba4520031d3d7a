"""Real-data statistics for the feature metrics, and their one cache.

The reference features of the real images (and their mean and covariance, for the FID) depend only on
the data, the feature network, the preprocessing and the number of reference images, so they are
computed once and kept: in memory for the process, and on disk as ``<dir>/<key>.npz`` where ``key``
hashes the dataset name, size and the content of the reference images, the extractor identity and
preprocessing, the sample count and how the reference subset was chosen (:func:`stats_key`). Files are
written atomically (:func:`saddlepoint.io.atomic_write_bytes`). An extractor without an identity (a
plain callable) is never cached here.
"""

from __future__ import annotations

import hashlib
import io
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from ..io import atomic_write_bytes
from .extractors import FeatureExtractor


def default_cache_dir() -> Path:
    """``$SADDLEPOINT_CACHE`` or ``$XDG_CACHE_HOME/saddlepoint`` (``~/.cache/saddlepoint``), + ``/stats``."""
    env = os.environ.get("SADDLEPOINT_CACHE")
    if env:
        return Path(env).expanduser() / "stats"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "saddlepoint" / "stats"


def images_digest(images: Tensor) -> str:
    """Hash of the reference images' bytes (so a changed folder under the same name is not confused)."""
    arr = torch.as_tensor(images).detach().cpu().contiguous().numpy()
    h = hashlib.sha256(str((arr.dtype.str, arr.shape)).encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()[:16]


def stats_key(dataset_name: str, dataset_size: int, content: str, extractor: FeatureExtractor, n: int,
              selection: str) -> str:
    """Cache key: a hash of dataset name/size/content, extractor identity, sample count, preprocessing."""
    parts = ["v1", dataset_name, str(dataset_size), content, str(extractor.identity), extractor.preprocess,
             str(n), selection]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


@dataclass
class RealStats:
    """Real-data features (N×d float32) and their float64 mean and covariance."""

    features: Tensor
    mu: np.ndarray
    sigma: np.ndarray


def feature_stats(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (N − 1) of N×d features, accumulated in float64."""
    f = torch.as_tensor(features).to(torch.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least 2 feature vectors (N×d), got shape {tuple(f.shape)}")
    mu = f.mean(dim=0)
    c = f - mu
    sigma = (c.T @ c) / (len(f) - 1)
    return mu.numpy(), sigma.numpy()


def compute_stats(extractor: FeatureExtractor, images: Tensor) -> RealStats:
    """Features of ``images`` and their statistics."""
    feats = extractor.features(images)
    mu, sigma = feature_stats(feats)
    return RealStats(feats, mu, sigma)


Reference = Callable[[], tuple[Tensor, str]]


class StatsCache:
    """The one cache of real statistics: memory (this process) over disk (``<directory>/<key>.npz``).

    Entries are keyed by :func:`stats_key`; the key of a (dataset, extractor, sample count) is remembered
    per dataset object (weakly), so that the reference images are hashed once per dataset.
    """

    def __init__(self) -> None:
        self._memory: dict[str, RealStats] = {}
        self._keys: weakref.WeakKeyDictionary[Any, dict[tuple, str]] = weakref.WeakKeyDictionary()

    def clear(self) -> None:
        self._memory.clear()
        self._keys.clear()

    def key(self, dataset: Any, extractor: FeatureExtractor, n: int, reference: Reference) -> str:
        """The cache key of ``dataset``'s ``n`` reference images (``reference()``: images, how chosen)."""
        settings = (extractor.identity, extractor.preprocess, n)
        try:
            keys = self._keys.setdefault(dataset, {})
        except TypeError:  # not weak-referenceable: hash every time
            keys = {}
        if settings not in keys:
            images, selection = reference()
            keys[settings] = stats_key(getattr(dataset, "name", "?"), len(dataset.images), images_digest(images),
                                       extractor, len(images), selection)
        return keys[settings]

    def get(self, key: str, directory: Path | None = None) -> RealStats | None:
        """From memory, else from ``directory`` (None: memory only); None if absent or unreadable."""
        if key in self._memory:
            return self._memory[key]
        if directory is None:
            return None
        try:
            with np.load(Path(directory) / f"{key}.npz", allow_pickle=False) as z:
                stats = RealStats(torch.from_numpy(z["features"].copy()), z["mu"].copy(), z["sigma"].copy())
        except (OSError, KeyError, ValueError):
            return None  # absent or unreadable: recompute
        self._memory[key] = stats
        return stats

    def put(self, key: str, stats: RealStats, directory: Path | None = None) -> None:
        """Keep ``stats`` in memory and, unless ``directory`` is None, write it there atomically."""
        self._memory[key] = stats
        if directory is None:
            return
        buffer = io.BytesIO()
        np.savez(buffer, features=stats.features.numpy(), mu=stats.mu, sigma=stats.sigma)
        try:
            atomic_write_bytes(Path(directory) / f"{key}.npz", buffer.getvalue())
        except UserError as exc:
            raise UserError(f"eval.cache_dir: {exc}") from None

    def fetch(self, dataset: Any, extractor: FeatureExtractor, n: int, directory: Path | None,
              reference: Reference) -> RealStats:
        """Real statistics of ``dataset``'s ``n`` reference images: from memory, disk, or computed (then
        kept). An extractor without identity is not cached: computed on every call."""
        chosen: list[tuple[Tensor, str]] = []

        def once() -> tuple[Tensor, str]:
            if not chosen:
                chosen.append(reference())
            return chosen[0]

        if extractor.identity is None:
            return compute_stats(extractor, once()[0])
        key = self.key(dataset, extractor, n, once)
        stats = self.get(key, directory)
        if stats is None:
            stats = compute_stats(extractor, once()[0])
            self.put(key, stats, directory)
        return stats


#: the real statistics of this process
REAL_STATS = StatsCache()


__all__ = [
    "REAL_STATS",
    "RealStats",
    "StatsCache",
    "compute_stats",
    "default_cache_dir",
    "feature_stats",
    "images_digest",
    "stats_key",
]
