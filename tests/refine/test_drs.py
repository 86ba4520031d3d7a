"""DRS with the exact discriminator: γ = 0 accepts at rate e^{−M} and returns samples of p_data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from saddlepoint.refine import DRS, acceptance_logit

from .exact import DATA, ExactLogit, S, Scale, max_log_ratio

ALPHA = 0.01  # level of the two-sample tests (fixed seeds: the outcome is deterministic)
EXACT = {"gamma": 0.0, "d_steps": 0, "calibration": "none", "pilot": 20_000, "batch_size": 4096}


@pytest.fixture(scope="module")
def exact_run():
    sampler = DRS(Scale(S), ExactLogit(DATA, S), EXACT)
    return sampler.sample(4000, seed=0, progress=False)


def test_gamma_zero_is_exact_rejection_sampling():
    """σ(F) with γ = 0 equals e^{d−M} up to O(ε)."""
    d = torch.linspace(-8.0, 0.0, 101, dtype=torch.float64)
    p = torch.sigmoid(acceptance_logit(d, 0.0, 1e-6, 0.0))
    assert torch.allclose(p, torch.exp(d), atol=1e-5)


def test_acceptance_rate_is_one_over_M(exact_run):
    M = exact_run.info["M"]
    assert M == pytest.approx(max_log_ratio(DATA), abs=0.02)  # the pilot finds the true maximum
    p = math.exp(-M)  # E_G[e^{d−M}] = e^{−M} ∫ p_data = 1/e^M
    se = math.sqrt(p * (1 - p) / exact_run.proposed)
    assert abs(exact_run.acceptance_rate - p) < 4 * se


def test_samples_follow_p_data(exact_run):
    x = exact_run.samples.reshape(-1).numpy().astype(np.float64)
    assert stats.kstest(x, DATA.cdf).pvalue > ALPHA
    real = DATA.sample(4000, torch.Generator().manual_seed(123)).reshape(-1).numpy()
    assert stats.ks_2samp(x, real).pvalue > ALPHA
    # the test has power: G's own samples are rejected
    g = (S * torch.randn(4000, generator=torch.Generator().manual_seed(1))).numpy()
    assert stats.ks_2samp(g, real).pvalue < 1e-6


def test_costs(exact_run):
    r = exact_run
    assert r.n == 4000 and r.accepted >= 4000
    assert r.g_evals == r.d_evals == r.proposed  # one G and one D evaluation per proposal
    assert r.g_per_sample == pytest.approx(r.proposed / 4000)
    assert r.setup_g_evals == r.setup_d_evals == EXACT["pilot"]  # the pilot set; no calibration


def test_percentile_gamma_sharpens():
    """γ at the 90th percentile keeps fewer, higher-logit samples than γ = 0."""
    opts = {**EXACT, "gamma": None, "percentile": 90.0}
    sharp = DRS(Scale(S), ExactLogit(DATA, S), opts).sample(2000, seed=0, progress=False)
    d = ExactLogit(DATA, S)
    exact = DRS(Scale(S), d, EXACT).sample(2000, seed=0, progress=False)
    assert sharp.info["gamma"] > 0
    assert sharp.acceptance_rate < exact.acceptance_rate
    assert d(sharp.samples).mean() > d(exact.samples).mean()


def test_gamma_follows_a_late_maximum():
    """A rare proposal with a huge logit raises M; γ (a percentile at the current M) follows, so the acceptance
    rate stays near the pilot's instead of collapsing to e^{−30}."""

    class Spiky(ExactLogit):
        def forward(self, x):
            return torch.where(x.reshape(-1) > 5.5, 30.0, super().forward(x))

    opts = {"d_steps": 0, "calibration": "none", "pilot": 100, "batch_size": 512, "percentile": 90.0,
            "calib_seed": 1}  # a pilot set that misses the spike (its largest x is 4.87)
    r = DRS(Scale(S), Spiky(DATA, S), opts).sample(1000, seed=0, progress=False)
    assert r.info["M"] == 30.0 and r.info["M_pilot"] < 5  # the spike was met while sampling, not before
    assert r.acceptance_rate > 0.05
