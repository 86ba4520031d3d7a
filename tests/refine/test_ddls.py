"""DDLS: the latent energy's gradient (finite differences, float64) and Langevin sampling of p_data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from saddlepoint.refine import DDLS, latent_energy

from .exact import SYMMETRIC, ExactLogit, S, Scale

NO_CAL = {"d_steps": 0, "calibration": "none"}


def smooth_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    G.z_dim = 3
    D = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    return G, D


def central_difference(f, z: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(z)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            e = torch.zeros_like(z)
            e[i, j] = h
            grad[i, j] = (f(z + e)[i] - f(z - e)[i]) / (2 * h)
    return grad


def test_energy_gradient_matches_finite_differences():
    G, D = smooth_pair()
    sampler = DDLS(G, D, NO_CAL)
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        fd = central_difference(sampler.energy, z)
    assert torch.allclose(sampler.energy_grad(z), fd, rtol=1e-6, atol=1e-8)


def test_energy_is_prior_minus_logit():
    G, D = smooth_pair()
    z = torch.randn(4, 3, dtype=torch.float64)
    expected = 0.5 * (z**2).sum(1) - D(G(z)).reshape(-1)
    assert torch.allclose(latent_energy(z, G, D), expected)


def test_platt_scales_the_gradient():
    """With d_cal = a·d + b, ∇E = z − a·∇d(G(z))."""
    G, D = smooth_pair()
    z = torch.randn(4, 3, dtype=torch.float64)
    plain = DDLS(G, D, NO_CAL).energy_grad(z)
    sampler = DDLS(G, D, NO_CAL)
    sampler.prepare()
    sampler.score.calibration.kind = "platt"
    sampler.score.calibration.params = {"a": torch.tensor(2.0, dtype=torch.float64),
                                        "b": torch.tensor(0.5, dtype=torch.float64)}
    assert torch.allclose(sampler.energy_grad(z), z + 2.0 * (plain - z))


def test_langevin_with_exact_logit_samples_p_data():
    """x = G(z) with z ~ e^{−E} is p_data; Langevin with a small step gets there (KS at 1%)."""
    opts = {**NO_CAL, "steps": 400, "step_size": 0.004, "batch_size": 2000}
    r = DDLS(Scale(S), ExactLogit(SYMMETRIC, S), opts).sample(2000, seed=0, progress=False)
    x = r.samples.reshape(-1).double().numpy()
    assert stats.kstest(x, SYMMETRIC.cdf).pvalue > 0.01
    g = S * np.random.default_rng(0).standard_normal(2000)
    assert stats.kstest(g, SYMMETRIC.cdf).pvalue < 1e-6
    assert r.g_evals == 2000 * 401 and r.d_evals == 2000 * 401
    assert r.acceptance_rate == pytest.approx(1.0)
