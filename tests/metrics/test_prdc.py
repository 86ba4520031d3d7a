"""Precision, recall, density and coverage: hand-built point sets and a naive reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saddlepoint.metrics import prdc


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _line(*xs: float) -> torch.Tensor:
    return torch.tensor([[x, 0.0] for x in xs], dtype=torch.float64)


def test_prdc_hand_built_sets_and_conventions() -> None:
    real, fake = _line(0, 1, 2, 3, 4), _line(0.5, 5, 10)
    out = prdc(real, fake, k=1)
    # real radii (k=1) are all 1; fake radii 4.5, 4.5, 5
    # precision (≤): 0.5 inside, 5 exactly on the ball of 4 → inside, 10 outside → 2/3
    # recall (≤): every real point lies within 4.5 of the fake point 0.5 → 1
    # density (<): 0.5 is strictly inside the balls of 0 and 1, 5 is on a boundary → 2/(1·3)
    # coverage (<): only 0 and 1 hold a fake point strictly inside their ball → 2/5
    assert out == pytest.approx({"precision": 2 / 3, "recall": 1.0, "density": 2 / 3, "coverage": 2 / 5})
    same = prdc(real, real.clone(), k=1)
    assert same == pytest.approx({"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0})
    # k = 2 on a square of side 1: radii √2 (the diagonal); the centre lies inside all four balls
    square = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float64)
    out = prdc(square, torch.tensor([[0.5, 0.5], [3.0, 3.0], [3.0, 4.0]], dtype=torch.float64), k=2)
    assert out["precision"] == pytest.approx(1 / 3) and out["density"] == pytest.approx(4 / 6)
    assert out["coverage"] == pytest.approx(1.0)


def _prdc_naive(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    def radii(a: np.ndarray) -> np.ndarray:
        return np.array([sorted(np.linalg.norm(a - p, axis=1))[k] for p in a])

    rr, rf = radii(real), radii(fake)
    dist = np.linalg.norm(real[:, None, :] - fake[None, :, :], axis=2)  # real × fake
    return {
        "precision": float(np.mean([(dist[:, j] <= rr).any() for j in range(len(fake))])),
        "recall": float(np.mean([(dist[i, :] <= rf).any() for i in range(len(real))])),
        "density": float(sum((dist[:, j] < rr).sum() for j in range(len(fake))) / (k * len(fake))),
        "coverage": float(np.mean([(dist[i, :] < rr[i]).any() for i in range(len(real))])),
    }


def test_prdc_matches_naive_definition_on_random_sets() -> None:
    r = _rng(12)
    real, fake = r.standard_normal((80, 5)), r.standard_normal((60, 5)) * 1.3 + 0.3
    ours = prdc(torch.tensor(real), torch.tensor(fake), k=3)
    assert ours == pytest.approx(_prdc_naive(real, fake, 3), abs=1e-12)
