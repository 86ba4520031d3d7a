"""Inception Score: a hand computation and its limits (uniform: 1, one-hot over K classes: K)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from saddlepoint.metrics import inception_score


def test_inception_score_hand_computation() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.25, 0.25, 0.5]])
    scores = []
    for part in (p[:2], p[2:]):
        py = part.mean(0)
        scores.append(math.exp(np.mean([sum(pi * math.log(pi / q) for pi, q in zip(row, py)) for row in part])))
    out = inception_score(torch.tensor(np.log(p)), splits=2)
    assert out["is"] == pytest.approx(np.mean(scores), rel=1e-12)
    assert out["is_std"] == pytest.approx(np.std(scores, ddof=1), rel=1e-9)


def test_inception_score_limits() -> None:
    assert inception_score(torch.zeros(100, 10), splits=5)["is"] == pytest.approx(1.0, abs=1e-12)
    k = 7
    logits = torch.full((k * 20, k), -1e4)
    logits[torch.arange(k * 20), torch.arange(k * 20) % k] = 0.0  # one-hot, each split holds every class
    out = inception_score(logits, splits=4)
    assert out["is"] == pytest.approx(k, rel=1e-9) and out["is_std"] == pytest.approx(0.0, abs=1e-9)
