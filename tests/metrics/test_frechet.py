"""Fréchet distance and FID: closed forms, identical statistics, agreement with scipy's sqrtm."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from saddlepoint.metrics import fid_from_features, frechet_distance
from saddlepoint.metrics.stats import feature_stats


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _random_psd(d: int, rank: int | None = None, seed: int = 0) -> np.ndarray:
    a = _rng(seed).standard_normal((d, rank or 2 * d))
    return a @ a.T / a.shape[1]


def _orthogonal(d: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(_rng(seed).standard_normal((d, d)))
    return q


@pytest.mark.parametrize("rotate", [False, True])
def test_frechet_matches_closed_form_for_commuting_covariances(rotate: bool) -> None:
    # Σ₁ = Q diag(a) Qᵀ, Σ₂ = Q diag(b) Qᵀ commute: d² = ‖μ₁−μ₂‖² + Σ (√aᵢ − √bᵢ)²
    d = 40
    r = _rng(1)
    a, b = r.uniform(0.1, 5.0, d), r.uniform(0.1, 5.0, d)
    mu1, mu2 = r.standard_normal(d), r.standard_normal(d)
    q = _orthogonal(d, 2) if rotate else np.eye(d)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    expected = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_one_dimensional_and_scaled() -> None:
    # 1-D: (m₁−m₂)² + (s₁−s₂)²; Σ₂ = c²Σ₁: d² = (1−c)² tr Σ₁
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0, rel=1e-12)
    s = _random_psd(30, seed=3)
    mu = np.zeros(30)
    assert frechet_distance(mu, s, mu, 9.0 * s) == pytest.approx(4.0 * np.trace(s), rel=1e-8)


@pytest.mark.parametrize("rank", [None, 10])
def test_frechet_zero_for_identical_statistics(rank: int | None) -> None:
    s = _random_psd(64, rank=rank, seed=4)  # rank 10: singular, round-off eigenvalues < 0 get clipped
    mu = _rng(5).standard_normal(64)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-8 * np.trace(s)


def test_frechet_agrees_with_scipy_sqrtm_and_is_symmetric() -> None:
    for seed, d in [(6, 20), (7, 60), (8, 120)]:
        s1, s2 = _random_psd(d, seed=seed), _random_psd(d, seed=seed + 100)
        mu1, mu2 = _rng(seed).standard_normal(d), _rng(seed + 1).standard_normal(d)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        reference = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
        ours = frechet_distance(mu1, s1, mu2, s2)
        assert ours == pytest.approx(reference, rel=1e-6)
        assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(ours, rel=1e-10)


def test_fid_from_features_uses_float64_statistics() -> None:
    f1 = torch.randn(500, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f2 = f1 * 2.0 + 1.0
    mu, sigma = feature_stats(f1)
    np.testing.assert_allclose(sigma, np.cov(f1.numpy(), rowvar=False), rtol=1e-12)
    # f2 = 2 f1 + 1: Δμ = μ+1, Σ₂ = 4Σ₁ → d² = ‖μ + 1‖² + tr Σ₁
    expected = float(((mu + 1.0) ** 2).sum() + np.trace(sigma))
    assert fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-9)
