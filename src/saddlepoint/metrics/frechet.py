"""Fréchet distance between Gaussians and the FID (Heusel et al. 2017, "GANs trained by a two time-scale
update rule converge to a local Nash equilibrium").

    d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½

computed in float64 with symmetric eigen-decompositions only: Σ₁^½ from ``eigh(Σ₁)``, then the
eigenvalues of the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½ (whose square roots sum to tr (Σ₁Σ₂)^½).
Negative eigenvalues from round-off are clipped to 0. This avoids scipy's ``sqrtm`` (a complex Schur
decomposition of a non-symmetric product), which is slower and can return spurious imaginary parts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .evaluate import METRICS, EvalContext, need_samples
from .stats import feature_stats


def _as64(a: object) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _sym(a: np.ndarray) -> np.ndarray:
    return (a + a.T) * 0.5


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr (Σ₁^½ Σ₂ Σ₁^½)^½ = Σ √λᵢ(Σ₁Σ₂) for symmetric PSD Σ₁, Σ₂ (float64, eigen form)."""
    s1, s2 = _sym(_as64(sigma1)), _sym(_as64(sigma2))
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # Σ₁^½
    m = _sym(root @ s2 @ root)
    lam = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


def frechet_distance(mu1: object, sigma1: object, mu2: object, sigma2: object) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂); float64, ≥ 0."""
    m1, m2 = _as64(mu1).reshape(-1), _as64(mu2).reshape(-1)
    s1, s2 = _as64(sigma1), _as64(sigma2)
    d = m1.shape[0]
    if m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu {m1.shape}/{m2.shape}, sigma {s1.shape}/{s2.shape}")
    diff = m1 - m2
    value = float(diff @ diff) + float(np.trace(s1)) + float(np.trace(s2)) - 2.0 * trace_sqrt_product(s1, s2)
    return max(value, 0.0)


def fid_from_features(real: object, fake: object) -> float:
    """FID between two feature sets (N×d each), statistics accumulated in float64."""
    mu1, s1 = feature_stats(torch.as_tensor(real))
    mu2, s2 = feature_stats(torch.as_tensor(fake))
    return frechet_distance(mu1, s1, mu2, s2)


@METRICS.register("fid", best={"fid": "min"}, primary="fid", needs="features", kinds=("images",), priority=1,
                  column=3)
def metric_fid(samples: torch.Tensor, dataset: Any, ctx: EvalContext | None = None) -> dict[str, Any]:
    """Fréchet distance between generated and real feature statistics (Heusel et al. 2017)."""
    ctx = ctx or EvalContext()
    need_samples(len(samples), 2, "fid")
    real = ctx.real_stats(dataset)
    mu, sigma = feature_stats(ctx.fake_features(samples, dataset))
    return {"fid": frechet_distance(real.mu, real.sigma, mu, sigma)}
