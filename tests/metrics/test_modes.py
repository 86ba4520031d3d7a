"""Mode statistics: hand-built ring and grid samples, Stacked-MNIST classes, the stacked-modes metric."""

from __future__ import annotations

import math

import pytest
import torch

from saddlepoint.data import build_dataset, grid_centers, ring_centers
from saddlepoint.errors import ConfigError
from saddlepoint.metrics import classify_digits, evaluate_metrics, mode_stats, stacked_mode_stats


def test_mode_stats_hand_built_ring_and_grid() -> None:
    c = ring_centers()  # 8 modes, σ = 0.01
    s = 0.01
    pts = torch.stack([c[0], c[0], c[1], c[2] + torch.tensor([2 * s, 0.0], dtype=c.dtype),
                       c[3] + torch.tensor([0.0, 3.5 * s], dtype=c.dtype), torch.zeros(2, dtype=c.dtype)])
    out = mode_stats(pts, c, s)
    # high quality: the first four (σ-distance 0, 0, 0, 2); 3.5σ and the origin are not
    assert out["modes"] == 3 and out["hq"] == pytest.approx(4 / 6)
    assert out["kl"] == pytest.approx(0.5 * math.log(4) + 0.5 * math.log(2), rel=1e-12)
    g = grid_centers()
    out = mode_stats(g.repeat(2, 1), g, 0.05)
    assert out == pytest.approx({"modes": 25, "hq": 1.0, "kl": 0.0})
    out = mode_stats(g + 1.0, g, 0.05)  # every point 1 away: 20σ
    assert out["modes"] == 0 and out["hq"] == 0.0 and out["kl"] == pytest.approx(math.log(25))


def test_stacked_mode_stats() -> None:
    assert stacked_mode_stats(torch.arange(1000)) == pytest.approx({"modes": 1000, "kl": 0.0})
    assert stacked_mode_stats(torch.full((50,), 7)) == pytest.approx({"modes": 1, "kl": math.log(1000)})
    assert stacked_mode_stats(torch.tensor([3, 3, 999, 999])) == pytest.approx({"modes": 2, "kl": math.log(500)})


def test_stacked_modes_metric_on_real_stacked_digits() -> None:
    ds = build_dataset("stacked-mnist", limit=600)
    digits = classify_digits(ds.images)
    pred = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    assert float((pred == ds.labels).double().mean()) > 0.95
    out = evaluate_metrics(["stacked-modes"], ds.images, ds)
    assert out == stacked_mode_stats(pred)
    truth = stacked_mode_stats(ds.labels)
    assert abs(out["modes"] - truth["modes"]) <= 15
    with pytest.raises(ConfigError, match="3-channel"):
        evaluate_metrics(["stacked-modes"], torch.zeros(4, 1, 28, 28), ds)
