"""Adversarial losses against hand-computed values and gradients."""

from __future__ import annotations

import pytest
import torch

from saddlepoint.errors import ConfigError
from saddlepoint.losses import LOSSES, PENALTIES, build_loss

from .helpers import sigmoid, softplus, t

# ----------------------------------------------------------------------------- losses

R = [1.0, -2.0]  # D(x) on two real samples
F = [0.5, -2.5]  # D(G(z)) on two fakes


#: the names CONTRACTS.md promises (more may be registered: tests/contracts/test_losses.py covers every one)
CONTRACT_LOSSES = ("minimax", "ns", "wgan", "lsgan", "hinge")
CONTRACT_PENALTIES = ("gp", "clip", "dragan", "r1", "r2")


@pytest.mark.parametrize("name", CONTRACT_LOSSES)
def test_contract_losses_are_registered(name: str) -> None:
    assert name in LOSSES and build_loss(name) is LOSSES.get(name)


@pytest.mark.parametrize("name", CONTRACT_PENALTIES)
def test_contract_penalties_are_registered(name: str) -> None:
    assert name in PENALTIES


def test_registered_names() -> None:
    assert build_loss("ns") is LOSSES.get("ns")
    with pytest.raises(ConfigError, match="loss.name: unknown loss 'vanilla'"):
        build_loss("vanilla")


def test_written_out_numbers() -> None:
    # softplus(−1) = log(1 + e^−1) = 0.313261687518..., softplus(2) = 2.126928011043...
    # softplus(0.5) = 0.974076984180..., softplus(−2.5) = 0.078889734293...
    loss_g, loss_d = LOSSES.get("ns")(t(R), t(F))
    # L_D = (0.3132617 + 2.1269280)/2 + (0.9740770 + 0.0788897)/2 = 1.2200949 + 0.5264834
    assert loss_d.item() == pytest.approx(1.746578208516926, rel=1e-12)
    # L_G = (softplus(−0.5) + softplus(2.5))/2 = (0.4740770 + 2.5788897)/2
    assert loss_g.item() == pytest.approx(1.526483359236328, rel=1e-12)
    loss_g, _ = LOSSES.get("minimax")(t(R), t(F))
    assert loss_g.item() == pytest.approx(-0.5264833592363282, rel=1e-12)


EXPECTED = {
    # name: (L_G, L_D) on R, F by the textbook formulas
    "minimax": (
        -(softplus(0.5) + softplus(-2.5)) / 2,  # E log(1 − σ(f)) = −E softplus(f)
        (softplus(-1) + softplus(2)) / 2 + (softplus(0.5) + softplus(-2.5)) / 2,
    ),
    "ns": (
        (softplus(-0.5) + softplus(2.5)) / 2,
        (softplus(-1) + softplus(2)) / 2 + (softplus(0.5) + softplus(-2.5)) / 2,
    ),
    "wgan": (1.0, -1.0 - (-0.5)),  # L_G = −mean F = 1; L_D = mean F − mean R
    # ½E(r−1)² + ½E f² = ½·(0 + 9)/2 + ½·(0.25 + 6.25)/2 = 2.25 + 1.625; L_G = ½·(0.25 + 12.25)/2
    "lsgan": (3.125, 3.875),
    # E relu(1−r) = (0 + 3)/2; E relu(1+f) = (1.5 + 0)/2
    "hinge": (1.0, 2.25),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_values(name: str) -> None:
    loss_g, loss_d = LOSSES.get(name)(t(R), t(F))
    assert loss_g.dim() == 0 and loss_d.dim() == 0
    exp_g, exp_d = EXPECTED[name]
    assert loss_g.item() == pytest.approx(exp_g, rel=1e-12, abs=1e-12)
    assert loss_d.item() == pytest.approx(exp_d, rel=1e-12, abs=1e-12)


def _analytic_grads(name: str, r: list[float], f: list[float]) -> tuple[list, list, list]:
    """(dL_D/dr, dL_D/df, dL_G/df), each a list over the batch."""
    n_r, n_f = len(r), len(f)
    if name == "minimax":
        return [-sigmoid(-x) / n_r for x in r], [sigmoid(x) / n_f for x in f], [-sigmoid(x) / n_f for x in f]
    if name == "ns":
        return [-sigmoid(-x) / n_r for x in r], [sigmoid(x) / n_f for x in f], [-sigmoid(-x) / n_f for x in f]
    if name == "wgan":
        return [-1 / n_r] * n_r, [1 / n_f] * n_f, [-1 / n_f] * n_f
    if name == "lsgan":
        return [(x - 1) / n_r for x in r], [x / n_f for x in f], [(x - 1) / n_f for x in f]
    if name == "hinge":
        return (
            [-(1.0 if x < 1 else 0.0) / n_r for x in r],
            [(1.0 if x > -1 else 0.0) / n_f for x in f],
            [-1 / n_f] * n_f,
        )
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_gradients(name: str) -> None:
    r_vals, f_vals = [1.5, -2.0, 0.25], [0.5, -2.5, 3.0]
    r, f = t(r_vals, grad=True), t(f_vals, grad=True)
    loss_g, loss_d = LOSSES.get(name)(r, f)
    gd_r, gd_f = torch.autograd.grad(loss_d, (r, f))
    (gg_f,) = torch.autograd.grad(loss_g, f)
    exp_dr, exp_df, exp_gf = _analytic_grads(name, r_vals, f_vals)
    assert gd_r.tolist() == pytest.approx(exp_dr, rel=1e-12, abs=1e-15)
    assert gd_f.tolist() == pytest.approx(exp_df, rel=1e-12, abs=1e-15)
    assert gg_f.tolist() == pytest.approx(exp_gf, rel=1e-12, abs=1e-15)


def test_minimax_is_saturating_and_ns_is_not() -> None:
    # D confidently rejects the fakes (f = −10): minimax's G gradient vanishes, ns's does not
    f = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(LOSSES.get("minimax")(torch.zeros(1), f)[0], f)
    (g_ns,) = torch.autograd.grad(LOSSES.get("ns")(torch.zeros(1), f)[0], f)
    assert g_mm.item() == pytest.approx(-sigmoid(-10.0), rel=1e-5)  # −4.54e−5
    assert g_ns.item() == pytest.approx(-sigmoid(10.0), rel=1e-5)  # ≈ −1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stability_at_extreme_logits(dtype: torch.dtype) -> None:
    r = torch.tensor([100.0, -100.0], dtype=dtype, requires_grad=True)
    f = torch.tensor([100.0, -100.0], dtype=dtype, requires_grad=True)
    # softplus(100) = 100 (+ e^-100), softplus(−100) = e^-100 ≈ 0
    limits = {
        "minimax": (-(100 + 0) / 2, (0 + 100) / 2 + (100 + 0) / 2),
        "ns": ((0 + 100) / 2, 100.0),
        "wgan": (0.0, 0.0),
        "lsgan": (0.5 * (99**2 + 101**2) / 2, 0.5 * (99**2 + 101**2) / 2 + 0.5 * (100**2 + 100**2) / 2),
        "hinge": (0.0, (0 + 101) / 2 + (101 + 0) / 2),
    }
    for name, (exp_g, exp_d) in limits.items():
        loss_g, loss_d = LOSSES.get(name)(r, f)
        assert torch.isfinite(loss_g) and torch.isfinite(loss_d)
        assert loss_g.item() == pytest.approx(exp_g, rel=1e-6, abs=1e-6)
        assert loss_d.item() == pytest.approx(exp_d, rel=1e-6, abs=1e-6)
        grads = torch.autograd.grad(loss_d + loss_g, (r, f))
        assert all(torch.isfinite(g).all() for g in grads)
    # minimax G gradient −σ(f)/N: −1/2 at f = 100, ≈ 0 at f = −100
    (g,) = torch.autograd.grad(LOSSES.get("minimax")(r, f)[0], f)
    assert g.tolist() == pytest.approx([-0.5, 0.0], abs=1e-12)
