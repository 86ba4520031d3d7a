"""``saddlepoint fid A B``: FID (and KID, IS) between two image sets, as pytorch-fid and clean-fid compute it.

A side is a folder of images (recursively; PNG/JPEG/...), a ``.npz``/``.npy`` array of images (the ``npz``
dataset's rules), a ``.npz`` of precomputed statistics (``mu`` and ``sigma``, pytorch-fid's format; FID only), or
images already in memory (the command line turns a run directory into its generator's samples). Features come from
``features`` (default ``inception``: :mod:`.inception`, the reference tools' network and preprocessing). The
statistics of a file or folder are cached on disk by a hash of the images' content, the network and its
preprocessing (:mod:`.stats`), so a reference set is read through the network once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data import DATASETS
from ..errors import DataError, UserError
from .extractors import FeatureExtractor, resolve_extractor
from .frechet import frechet_distance
from .inception_score import inception_score
from .kid import kid
from .stats import REAL_STATS, RealStats, compute_stats, images_digest, stats_key


@dataclass
class Side:
    """One side of the comparison: images (N×C×H×W in [-1, 1]) or precomputed statistics."""

    label: str
    images: Tensor | None = None
    stats: RealStats | None = None


def load_side(path: str | Path) -> Side:
    """A folder of images, an image array (``.npz``/``.npy``) or a statistics file (``mu``, ``sigma``)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    if p.is_dir():
        return Side(str(p), images=DATASETS.get("folder")(root=str(p)).images)
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                if {"mu", "sigma"} <= set(z.files):
                    mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
                    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
                        raise DataError(f"{p}: statistics of shapes mu {mu.shape}, sigma {sigma.shape} (need d, d×d)")
                    return Side(str(p), stats=RealStats(torch.zeros(0, len(mu)), mu, sigma))
        except (OSError, ValueError) as exc:
            raise DataError(f"{p}: cannot read as .npz ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    dataset = DATASETS.get("npz")(root=str(p))
    if dataset.kind != "images":
        raise DataError(f"{p}: holds points, not images")
    return Side(str(p), images=dataset.images)


def side_stats(side: Side, extractor: FeatureExtractor, cache_dir: Path | None) -> RealStats:
    """Features and statistics of a side: precomputed, from the cache (keyed by the images' content), or computed."""
    if side.stats is not None:
        return side.stats
    assert side.images is not None
    if extractor.identity is None:
        return compute_stats(extractor, side.images)
    key = stats_key("fid-input", len(side.images), images_digest(side.images), extractor, len(side.images), "all")
    stats = REAL_STATS.get(key, cache_dir)
    if stats is None:
        stats = compute_stats(extractor, side.images)
        REAL_STATS.put(key, stats, cache_dir)
    return stats


def compare(a: Side, b: Side, *, features: Any = "inception", inception_path: str | None = None,
            kid_metric: bool = False, inception_score_of_a: bool = False, cache_dir: Path | None = None,
            kid_subsets: int = 100, kid_subset_size: int = 1000, device: str | None = None) -> dict[str, float]:
    """FID between ``a`` and ``b`` (both ways the same); KID with ``kid_metric``; the Inception Score of ``a``.
    ``device``: where the feature network runs (default: where it is, the CPU)."""
    channels = {s.images.shape[1] for s in (a, b) if s.images is not None}
    if len(channels) > 1:
        raise UserError(f"fid: {a.label} and {b.label} differ in channels ({sorted(channels)})")
    probe = next((s.images for s in (a, b) if s.images is not None), None)
    shape = tuple(probe.shape[1:]) if probe is not None else (3, 32, 32)
    extractor = resolve_extractor(features, _Probe(shape), inception_path)
    if device is not None:
        extractor.to(device)
    sa, sb = side_stats(a, extractor, cache_dir), side_stats(b, extractor, cache_dir)
    if len(sa.mu) != len(sb.mu):
        raise UserError(f"fid: statistics of {len(sa.mu)} and {len(sb.mu)} features (different networks?)")
    out = {"fid": frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)}
    if kid_metric:
        if len(sa.features) == 0 or len(sb.features) == 0:
            raise UserError("--metrics kid: KID needs the features of both sides; a statistics file has only "
                            "mu and sigma")
        out.update(kid(sa.features, sb.features, subsets=kid_subsets, subset_size=kid_subset_size))
    if inception_score_of_a:
        if a.images is None:
            raise UserError(f"--metrics is: {a.label} holds statistics, not images")
        out.update(inception_score(extractor.logits(a.images)))
    return out


def save_stats(side: Side, path: str | Path, *, features: Any = "inception", inception_path: str | None = None,
               cache_dir: Path | None = None) -> Path:
    """Write the side's ``mu`` and ``sigma`` as ``.npz`` (pytorch-fid's ``--save-stats`` format)."""
    if side.images is None:
        raise UserError(f"fid --save-stats: {side.label} holds statistics already")
    extractor = resolve_extractor(features, _Probe(tuple(side.images.shape[1:])), inception_path)
    stats = side_stats(side, extractor, cache_dir)
    out = Path(path)
    np.savez(out, mu=stats.mu, sigma=stats.sigma)
    return out


class _Probe:
    """What :func:`resolve_extractor` needs to know of a data set: images of this shape."""

    kind, name = "images", "fid-input"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.sample_shape = shape


__all__ = ["Side", "compare", "load_side", "save_stats", "side_stats"]
