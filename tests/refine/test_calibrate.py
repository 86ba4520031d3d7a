"""Calibration maps, continued D training and the weights fingerprint."""

from __future__ import annotations

import torch
from torch import nn

from saddlepoint.refine import Calibration, fingerprint
from saddlepoint.refine.base import Counts
from saddlepoint.refine.calibrate import finetune, interp

from .exact import DATA, ExactLogit, S, Scale


def gaussian_logits(n: int = 20_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of real ~ N(1, 1) and generated ~ N(−1, 1): the calibrated logit is log N(d;1,1)/N(d;−1,1) = 2d."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, generator=g, dtype=torch.float64) + 1, torch.randn(n, generator=g, dtype=torch.float64) - 1


def test_platt_recovers_the_affine_map():
    cal = Calibration.fit("platt", *gaussian_logits())
    assert abs(float(cal.params["a"]) - 2.0) < 0.1 and abs(float(cal.params["b"])) < 0.05
    d = torch.linspace(-2, 2, 5, dtype=torch.float64)
    assert torch.allclose(cal(d), 2 * d, atol=0.25)


def test_isotonic_is_monotone_clipped_and_close():
    d_real, d_fake = gaussian_logits()
    cal = Calibration.fit("isotonic", d_real, d_fake)
    d = torch.linspace(-6, 6, 601, dtype=torch.float64)
    out = cal(d)
    assert torch.isfinite(out).all() and (out.diff() >= 0).all()
    mid = d.abs() < 1.5
    assert (out[mid] - 2 * d[mid]).abs().max() < 0.5
    assert Calibration.from_state(cal.state_dict())(d).equal(out)


def test_interp_matches_numpy():
    xp, fp = torch.tensor([0.0, 1.0, 3.0]), torch.tensor([0.0, 2.0, 3.0])
    x = torch.tensor([-1.0, 0.5, 2.0, 5.0])
    assert torch.allclose(interp(x, xp, fp), torch.tensor([0.0, 1.0, 2.5, 3.0]))


def test_continued_training_learns_the_log_ratio():
    """A fresh D trained against the frozen G approaches d* = log p_data − log p_G where both have mass."""
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    latent = lambda n, g: torch.randn(n, 1, generator=g)  # noqa: E731
    counts = Counts()
    tuned = finetune(Scale(S), D, DATA.sample, latent, steps=400, lr=5e-3, batch=256, seed=0, counts=counts)
    assert counts.g == 400 * 256 and counts.d == 2 * 400 * 256
    x = DATA.sample(2000, torch.Generator().manual_seed(5))
    with torch.no_grad():
        learned, exact = tuned(x).reshape(-1).double(), ExactLogit(DATA, S)(x)
    assert torch.corrcoef(torch.stack([learned, exact]))[0, 1] > 0.9
    assert D is not tuned and not D[0].weight.equal(tuned[0].weight)  # the original D is untouched


def test_fingerprint_tracks_weights_and_options():
    a = nn.Linear(2, 1)
    key = fingerprint(a, sampler="drs", options={"d_steps": 1})
    assert key == fingerprint(a, sampler="drs", options={"d_steps": 1})
    assert key != fingerprint(a, sampler="drs", options={"d_steps": 2})
    assert key != fingerprint(a, sampler="mh", options={"d_steps": 1})
    with torch.no_grad():
        a.weight[0, 0] += 1e-7
    assert key != fingerprint(a, sampler="drs", options={"d_steps": 1})
