"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

KID is the unbiased estimator of the squared MMD with the cubic polynomial kernel
k(x, y) = (x·y / d + 1)³ (d: feature dimension):

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(xᵢ, xⱼ) + 1/(m(m−1)) Σ_{i≠j} k(yᵢ, yⱼ) − 2/m² Σ_{i,j} k(xᵢ, yⱼ),

computed on ``subsets`` random subsets of ``m = min(subset_size, n_real, n_fake)`` real and fake
features each (drawn without replacement within a subset, independently across subsets, from a seeded
generator); the result is the mean and the standard deviation over subsets. Being unbiased it can be
negative when the two distributions are equal. When a subset is a whole sample set (m equals its size) the
subsets differ only in the other set, and the standard deviation is no standard error: a ``warning:`` line
says so.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from .evaluate import METRICS, EvalContext, need_samples


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x·y/d + 1)³ for all pairs of rows, float64."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD² between two equally sized samples (rows) with the cubic polynomial kernel."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    m = x.shape[0]
    if m < 2 or y.shape[0] != m:
        raise ValueError(f"need two samples of the same size ≥ 2, got {x.shape[0]} and {y.shape[0]}")
    kxx = polynomial_kernel(x, x)
    kyy = polynomial_kernel(y, y)
    kxy = polynomial_kernel(x, y)
    off = m * (m - 1)
    return float(
        (kxx.sum() - kxx.diagonal().sum()) / off + (kyy.sum() - kyy.diagonal().sum()) / off - 2.0 * kxy.mean()
    )


def kid(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """{"kid": mean MMD²_u over subsets, "kid_std": standard deviation over subsets}."""
    real = torch.as_tensor(real, dtype=torch.float64)
    fake = torch.as_tensor(fake, dtype=torch.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need N×d feature sets of one dimension, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if subsets < 1:
        raise ValueError(f"subsets must be ≥ 1, got {subsets}")
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError(f"KID needs at least 2 real and 2 generated samples, got {len(real)} and {len(fake)}")
    whole = [name for name, n in (("real", len(real)), ("generated", len(fake))) if m == n]
    if whole and subsets > 1:
        print(f"warning: KID subsets of {m} hold every {' and every '.join(whole)} sample: kid_std measures only "
              "the resampling of the other set (none if both), not a standard error; give more samples than "
              "eval.kid_subset_size", file=sys.stderr)
    g = torch.Generator().manual_seed(seed)
    values = torch.empty(subsets, dtype=torch.float64)
    for s in range(subsets):
        i = torch.randperm(len(real), generator=g)[:m]
        j = torch.randperm(len(fake), generator=g)[:m]
        values[s] = mmd2_unbiased(real[i], fake[j])
    std = float(values.std(unbiased=True)) if subsets > 1 else 0.0
    return {"kid": float(values.mean()), "kid_std": std}


@METRICS.register("kid", best={"kid": "min", "kid_std": None}, primary="kid", needs="features", kinds=("images",),
                  priority=2, column=4)
def metric_kid(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Kernel Inception Distance (Bińkowski et al. 2018): mean and std over seeded subsets."""
    ctx = ctx or EvalContext()
    need_samples(len(samples), 2, "kid")
    real = ctx.real_stats(dataset)
    return kid(real.features, ctx.fake_features(samples, dataset), subsets=ctx.cfg.kid_subsets,
               subset_size=ctx.cfg.kid_subset_size, seed=0)
