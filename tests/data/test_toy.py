"""The 2-D mixtures (PacGAN protocol)."""

from __future__ import annotations

import math

import pytest
import torch

from saddlepoint.data import (
    PointDataset,
    build_dataset,
)

from .helpers import (
    gen,
)

# ------------------------------------------------------------------------------------------------ 2-D


def test_ring_centers_protocol():
    ds = build_dataset("ring")
    assert isinstance(ds, PointDataset) and ds.kind == "points" and ds.sample_shape == (2,)
    c = ds.centers.double()
    assert c.shape == (8, 2) and ds.std == 0.01
    assert torch.allclose(c.norm(dim=1), torch.ones(8, dtype=torch.float64), atol=1e-12)
    for k in range(8):  # (cos 2πk/8, sin 2πk/8), k = 0..7: no repeated endpoint
        assert c[k].tolist() == pytest.approx([math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)])
    d = torch.cdist(c, c) + torch.eye(8, dtype=torch.float64) * 10
    assert d.min().item() == pytest.approx(2 * math.sin(math.pi / 8))  # 8 distinct, evenly spaced


def test_grid_centers_protocol():
    ds = build_dataset("grid")
    assert ds.centers.shape == (25, 2) and ds.std == 0.05
    got = {tuple(p) for p in ds.centers.tolist()}
    assert got == {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_samples(name):
    ds = build_dataset(name)
    x = ds.sample(40_000, gen(1))
    assert x.shape == (40_000, 2) and x.dtype == torch.float32
    c = ds.centers.float()
    nearest = torch.cdist(x, c).argmin(dim=1)
    resid = x - c[nearest]
    assert resid.mean(dim=0).abs().max().item() < 0.05 * ds.std
    assert resid.std(dim=0).tolist() == pytest.approx([ds.std, ds.std], rel=0.05)
    counts = torch.bincount(nearest, minlength=len(c)).double()
    expected = 40_000 / len(c)
    assert (counts - expected).abs().max().item() < 5 * math.sqrt(expected)  # uniform mode weights
    # seeded reproducibility; different seeds differ; no stream state
    assert torch.equal(ds.sample(100, gen(7)), build_dataset(name).sample(100, gen(7)))
    assert not torch.equal(ds.sample(100, gen(7)), ds.sample(100, gen(8)))
    assert ds.state_dict() == {}
    ds.load_state_dict({})
    with pytest.raises(ValueError):
        ds.sample(0, gen())
