"""MH-GAN with the exact discriminator: p_data is the stationary distribution of the independence chain."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from saddlepoint.refine import MH

from .exact import DATA, ExactLogit, S, Scale, equiprobable_counts

ALPHA = 0.01  # level of the chi-square tests (fixed seeds: the outcome is deterministic)
EXACT = {"d_steps": 0, "calibration": "none", "batch_size": 4000}
N = 4000


def chi2_pvalue(samples: torch.Tensor) -> float:
    observed, expected = equiprobable_counts(samples.reshape(-1).double().numpy(), DATA)
    return float(stats.chisquare(observed, expected).pvalue)


def sampler(**options) -> MH:
    return MH(Scale(S), ExactLogit(DATA, S), {**EXACT, **options}, real=DATA.sample)


def test_stationary_from_a_real_start():
    """Started in p_data (a real sample), the chain stays in p_data after any number of proposals."""
    for k in (1, 5):
        r = sampler(k=k, restart=False).sample(N, seed=k, progress=False)
        assert chi2_pvalue(r.samples) > ALPHA, k
        assert 0 < r.acceptance_rate < 1


def test_converges_from_a_generated_start():
    r = sampler(k=60, init="generated").sample(N, seed=0, progress=False)
    assert chi2_pvalue(r.samples) > ALPHA


def test_default_restart_keeps_p_data():
    r = sampler(k=20).sample(N, seed=2, progress=False)
    assert r.info["restarted"] < 0.02 * N
    assert chi2_pvalue(r.samples) > ALPHA


def test_histogram_test_has_power():
    g = S * torch.randn(N, generator=torch.Generator().manual_seed(0))
    assert chi2_pvalue(g) < 1e-6


def test_costs():
    r = sampler(k=7).sample(100, seed=0, progress=False)
    assert r.proposed == 700 and r.g_evals == 700
    assert r.d_evals == 800  # k proposals + the real start, per chain
    assert r.g_per_sample == pytest.approx(7.0)


def test_restart_chain_replaces_unmoved_chains():
    """A logit that never favours a proposal over the real start: every chain restarts from proposal 1."""

    class Stubborn(torch.nn.Module):
        def forward(self, x):  # real samples (|x| < 5 here) score 100, generated ones far out score 0
            return torch.where(x.reshape(-1).abs() < 5, 100.0, 0.0).double()

    class Far(torch.nn.Module):
        z_dim = 1

        def forward(self, z):
            return 10.0 + z.abs()

    r = MH(Far(), Stubborn(), {**EXACT, "k": 4}, real=DATA.sample).sample(50, seed=0, progress=False)
    assert r.info["restarted"] == 50
    assert (r.samples >= 10).all()
