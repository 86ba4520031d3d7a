"""Closed-form test bed: a 1-D Gaussian generator, a Gaussian-mixture data density and the exact discriminator.

p_G = N(0, s²) is generated as G(z) = s·z; p_data = Σ w_i N(μ_i, σ_i²) with σ_i < s, so that the density ratio
p_data / p_G is bounded (rejection sampling needs M < ∞). The exact discriminator's logit is
d(x) = log p_data(x) − log p_G(x) (D* = p_data / (p_data + p_G), Goodfellow et al. 2014, Prop. 1).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn


class Scale(nn.Module):
    """G(z) = s·z: pushes N(0, 1) to N(0, s²)."""

    def __init__(self, s: float) -> None:
        super().__init__()
        self.s = s
        self.z_dim = 1

    def forward(self, z: Tensor) -> Tensor:
        return self.s * z


class Mixture:
    """A 1-D Gaussian mixture with known density, CDF and sampler."""

    def __init__(self, weights: tuple[float, ...], means: tuple[float, ...], stds: tuple[float, ...]) -> None:
        self.w = np.asarray(weights, dtype=np.float64)
        self.mu = np.asarray(means, dtype=np.float64)
        self.sd = np.asarray(stds, dtype=np.float64)

    def log_pdf(self, x: Tensor) -> Tensor:
        x = x.to(torch.float64).reshape(-1, 1)
        mu, sd, w = (torch.as_tensor(a) for a in (self.mu, self.sd, self.w))
        comp = -0.5 * ((x - mu) / sd) ** 2 - torch.log(sd) - 0.5 * math.log(2 * math.pi) + torch.log(w)
        return torch.logsumexp(comp, dim=1)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)[..., None]
        return (self.w * stats.norm.cdf(x, self.mu, self.sd)).sum(-1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        comp = torch.multinomial(torch.as_tensor(self.w), n, replacement=True, generator=generator)
        eps = torch.randn(n, generator=generator, dtype=torch.float64)
        x = torch.as_tensor(self.mu)[comp] + torch.as_tensor(self.sd)[comp] * eps
        return x.reshape(n, 1).to(torch.float32)


class ExactLogit(nn.Module):
    """d(x) = log p_data(x) − log N(x; 0, s²), computed in float64."""

    def __init__(self, data: Mixture, s: float) -> None:
        super().__init__()
        self.data, self.s = data, s

    def forward(self, x: Tensor) -> Tensor:
        x64 = x.to(torch.float64).reshape(-1)
        log_pg = -0.5 * (x64 / self.s) ** 2 - math.log(self.s) - 0.5 * math.log(2 * math.pi)
        return self.data.log_pdf(x64) - log_pg


S = 2.0
#: asymmetric, so that an unrefined G (symmetric N(0, 4)) is far from it
DATA = Mixture((0.3, 0.7), (-1.5, 1.2), (0.5, 0.4))
SYMMETRIC = Mixture((0.5, 0.5), (-1.5, 1.5), (0.5, 0.5))


def max_log_ratio(data: Mixture, s: float = S) -> float:
    """max_x d(x) on a fine grid (the true M)."""
    grid = torch.linspace(-6, 6, 200_001, dtype=torch.float64)
    return float(ExactLogit(data, s)(grid).max())


def equiprobable_counts(x: np.ndarray, data: Mixture, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Observed counts of x in ``bins`` bins of equal p_data mass (edges by bisection on the CDF), and the
    expected counts n/bins."""
    grid = np.linspace(-8, 8, 400_001)
    cdf = data.cdf(grid)
    edges = np.interp(np.arange(1, bins) / bins, cdf, grid)
    observed = np.bincount(np.searchsorted(edges, x), minlength=bins)
    return observed, np.full(bins, len(x) / bins)
