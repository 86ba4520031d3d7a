"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric for
assessing generative models") and density and coverage (Naeem et al. 2020, "Reliable fidelity and
diversity metrics for generative models"), from k-nearest-neighbour radii in feature space.

Euclidean distances in float64 (squared distances compared, no square roots). For a set A, r_k(a) is
the distance from a ∈ A to its k-th nearest neighbour in A, not counting a itself (duplicates count).

* precision = fraction of fake points y with ‖y − x‖ ≤ r_k(x) for some real x (the paper's ``≤``);
* recall    = fraction of real points x with ‖x − y‖ ≤ r_k(y) for some fake y (``≤``);
* density   = 1/(k·M) Σ_y #{real x : ‖y − x‖ < r_k(x)} (strict ``<``, as the authors' ``prdc`` package);
* coverage  = fraction of real x with ‖x − y‖ < r_k(x) for some fake y (strict ``<``).

Default k = 5 for all four (Naeem et al.'s choice; Kynkäänniemi et al. use k = 3).
"""

from __future__ import annotations

from typing import Any

import torch

from .evaluate import METRICS, EvalContext, need_samples

_CHUNK = 1024


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances (float64, clamped at 0)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return d.clamp_min_(0.0)


def knn_sqradii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance from each row of ``x`` to its k-th nearest other row (self excluded)."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} points for k-NN radii, got {len(x)}")
    out = []
    for start in range(0, len(x), _CHUNK):
        d = _sqdist(x[start : start + _CHUNK], x)
        # the smallest is the point itself (0); the (k+1)-th smallest is the k-th neighbour
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def _within(query: torch.Tensor, centers: torch.Tensor, sqradii: torch.Tensor, strict: bool) -> torch.Tensor:
    """Per query point: the number of balls B(center, radius) that contain it."""
    counts = []
    for start in range(0, len(query), _CHUNK):
        d = _sqdist(query[start : start + _CHUNK], centers)
        inside = d < sqradii[None, :] if strict else d <= sqradii[None, :]
        counts.append(inside.sum(1))
    return torch.cat(counts)


def prdc(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 5) -> dict[str, float]:
    """{"precision", "recall", "density", "coverage"} of fake features against real ones."""
    real = torch.as_tensor(real_features, dtype=torch.float64)
    fake = torch.as_tensor(fake_features, dtype=torch.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need N×d feature sets of one dimension, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    r_real = knn_sqradii(real, k)
    r_fake = knn_sqradii(fake, k)
    precision = float((_within(fake, real, r_real, strict=False) > 0).double().mean())
    recall = float((_within(real, fake, r_fake, strict=False) > 0).double().mean())
    density = float(_within(fake, real, r_real, strict=True).double().sum() / (k * len(fake)))
    # coverage: real x whose own ball holds a fake point ⇔ nearest fake distance < r_k(x)
    nearest = torch.cat([_sqdist(real[s : s + _CHUNK], fake).min(1).values for s in range(0, len(real), _CHUNK)])
    coverage = float((nearest < r_real).double().mean())
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@METRICS.register("prdc", best={"precision": "max", "recall": "max", "density": "max", "coverage": "max"},
                  primary="coverage", needs="features", kinds=("images",), priority=6, column=6)
def metric_prdc(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem et al. 2020); the real
    features are a seeded subset of as many points as there are generated samples."""
    ctx = ctx or EvalContext()
    k = ctx.cfg.prdc_k
    need_samples(len(samples), k + 1, "prdc")
    real = ctx.real_stats(dataset).features
    fake = ctx.fake_features(samples, dataset)
    if len(real) > len(fake):
        real = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[: len(fake)]]
    return prdc(real, fake, k=k)
