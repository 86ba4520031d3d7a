"""Mode statistics on 2-D mixtures, the PacGAN protocol (Lin et al. 2018, their released code).

Each sample is assigned to its nearest centre in the σ-scaled distance √Σ((x−μ)²/σ²); it is *high
quality* if that distance is below ``threshold`` (3, i.e. within 3σ). A mode is covered if at least
one high-quality sample is assigned to it. ``kl`` is KL(histogram of high-quality samples over modes
‖ uniform), natural log; a mode with no sample contributes 0 (0·log 0 = 0). With no high-quality
sample at all the histogram is undefined and ``kl`` is reported as log K (the KL of a point mass).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import ConfigError
from .evaluate import METRICS, EvalContext
from .extractors import classify_digits


def mode_stats(
    samples: torch.Tensor, centers: torch.Tensor, std: float, threshold: float = 3.0
) -> dict[str, float | int]:
    """{"modes": covered modes, "hq": fraction of high-quality samples, "kl": KL(hist ‖ uniform)}."""
    x = torch.as_tensor(samples, dtype=torch.float64)
    c = torch.as_tensor(centers, dtype=torch.float64)
    dist = torch.cdist(x, c) / std
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist < threshold
    k = c.shape[0]
    counts = torch.bincount(nearest[good], minlength=k).to(torch.float64)
    n_good = int(good.sum())
    if n_good == 0:
        kl = math.log(k)
    else:
        p = counts / n_good
        nz = p > 0
        kl = float((p[nz] * torch.log(p[nz] * k)).sum())
    return {"modes": int((counts > 0).sum()), "hq": n_good / max(1, x.shape[0]), "kl": kl}


def stacked_mode_stats(labels: torch.Tensor, n_modes: int = 1000) -> dict[str, float | int]:
    """Stacked-MNIST mode statistics (Metz et al. 2017; Srivastava et al. 2017; Lin et al. 2018).

    ``labels``: one class per generated sample, 100·d_R + 10·d_G + d_B from a digit classifier applied
    to each channel. Returns {"modes": distinct classes seen, "kl": KL(class histogram ‖ uniform over
    ``n_modes``)}, natural log, 0·log 0 = 0.
    """
    lab = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if len(lab) == 0:
        raise ValueError("stacked-modes needs at least one sample")
    if int(lab.min()) < 0 or int(lab.max()) >= n_modes:
        raise ValueError(f"labels must lie in 0..{n_modes - 1}")
    counts = torch.bincount(lab, minlength=n_modes).to(torch.float64)
    p = counts / len(lab)
    nz = p > 0
    return {"modes": int(nz.sum()), "kl": float((p[nz] * torch.log(p[nz] * n_modes)).sum())}


def _check_mixture(dataset: Any) -> None:
    if getattr(dataset, "centers", None) is None:
        raise ConfigError("eval.metrics: 'modes' needs a 2-D mixture dataset with known centres (ring, grid)")


def _check_stacked(dataset: Any) -> None:
    if tuple(getattr(dataset, "sample_shape", ()))[:1] != (3,):
        raise ConfigError("eval.metrics: 'stacked-modes' needs 3-channel images (Stacked MNIST)")


@METRICS.register("modes", best={"modes": "max", "hq": "max", "kl": "min"}, primary="kl", kinds=("points",),
                  check=_check_mixture, priority=4, column=1, rank=("modes", "kl"))
def metric_modes(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """PacGAN mode statistics of 2-D samples (:func:`mode_stats`); tables rank by modes, then KL."""
    _check_mixture(dataset)
    return mode_stats(samples, dataset.centers, dataset.std)


@METRICS.register("stacked-modes", best={"modes": "max", "kl": "min"}, primary="kl", kinds=("images",),
                  check=_check_stacked, priority=3, column=2, rank=("modes", "kl"))
def metric_stacked_modes(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Stacked-MNIST modes covered and KL to uniform over 1,000 classes (shipped classifier per channel)."""
    if samples.ndim != 4 or samples.shape[1] != 3:
        raise ConfigError(
            f"eval.metrics: 'stacked-modes' needs 3-channel images (Stacked MNIST), got shape {tuple(samples.shape)}"
        )
    d = classify_digits(samples)
    return stacked_mode_stats(d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2])
