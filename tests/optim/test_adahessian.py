"""AdaHessian (saddlepoint.optim.adahessian) and Hutchinson's diagonal (saddlepoint.optim.derivatives), float64.

Hutchinson: for Rademacher z, E[z ⊙ Hz] = diag(H) because E[z zᵀ] = I; entry j of one sample is
H_jj + Σ_{l≠j} H_jl z_j z_l, with variance Σ_{l≠j} H_jl².
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.optim import build
from saddlepoint.optim.derivatives import GameDerivatives, hutchinson_diagonal, rademacher
from saddlepoint.optim.rules import spatial_average
from saddlepoint.optim.sources import HUTCHINSON_SEED
from saddlepoint.optim.zeroth_order import seed_for

DT = torch.float64


def quadratic(d: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(d, d, generator=gen, dtype=DT)
    H = (B + B.T) / 2 + 3 * torch.eye(d, dtype=DT)
    theta = torch.randn(d, generator=gen, dtype=DT).requires_grad_()
    return theta, H, lambda: [0.5 * theta @ H @ theta]


def test_hutchinson_mean_is_the_diagonal_within_three_standard_errors():
    theta, H, closure = quadratic()
    n = 2000
    d = GameDerivatives([[theta]], closure())
    gen = torch.Generator().manual_seed(1)
    samples = torch.stack([hutchinson_diagonal(d, 0, 1, gen)[0] for _ in range(n)])
    se = samples.std(0) / math.sqrt(n)
    assert torch.all((samples.mean(0) - torch.diagonal(H)).abs() <= 3 * se)
    predicted = torch.sqrt(((H**2).sum(1) - torch.diagonal(H) ** 2) / n)  # Σ_{l≠j} H_jl² / n
    assert torch.allclose(se, predicted, rtol=0.15)


def test_finite_difference_products_give_the_same_diagonal():
    theta, H, closure = quadratic(seed=2)
    exact = hutchinson_diagonal(GameDerivatives([[theta]], closure()), 0, 3, torch.Generator().manual_seed(4))
    fd = hutchinson_diagonal(GameDerivatives([[theta]], closure(), evaluate=closure, mode="fd"), 0, 3,
                             torch.Generator().manual_seed(4))
    assert torch.allclose(exact[0], fd[0], atol=1e-8)


def test_first_step_closed_form():
    """Step 1: m̂ = g, v̂ = D², so Δθ = −η g / (|D|^k + ε) with D = z ⊙ Hz for the step's Rademacher z."""
    for power in (1.0, 0.5):
        theta, H, closure = quadratic(seed=3)
        theta0 = theta.detach().clone()
        opt = build("adahessian", [[theta]], lr=0.1, hessian_power=power)
        opt.step(closure)
        z = rademacher([theta], torch.Generator().manual_seed(seed_for(HUTCHINSON_SEED, 0, 0, 0)))[0]
        D = z * (H @ z)
        g = H @ theta0
        expected = theta0 - 0.1 * g / (D.abs() ** power + 1e-4)
        assert torch.allclose(theta.detach(), expected, rtol=1e-12, atol=1e-12)
        assert opt.requires_double_backward and opt.counts["hvp"] == 1


def test_spatial_average_over_kernel_blocks():
    diag = torch.arange(2 * 3 * 2 * 2, dtype=DT).view(2, 3, 2, 2)
    avg = spatial_average(diag)
    assert torch.equal(avg[1, 2], torch.full((2, 2), float(diag[1, 2].mean()), dtype=DT))
    vec = torch.arange(5, dtype=DT)
    assert spatial_average(vec) is vec


def test_converges_on_a_quadratic_game():
    """f_x = ½xᵀPx + xᵀy, f_y = ½yᵀPy − xᵀy: each player's own Hessian is P (diagonal), so AdaHessian with
    η = 1, β₁ = 0 is a per-coordinate Newton step on the own block; it converges."""
    P = torch.diag(torch.tensor([1.0, 4.0, 9.0], dtype=DT))
    x = torch.ones(3, dtype=DT, requires_grad=True)
    y = -torch.ones(3, dtype=DT, requires_grad=True)
    opt = build("adahessian", [[x], [y]], lr=0.5, beta1=0.0, beta2=0.0)
    for _ in range(200):
        opt.step(lambda: [0.5 * x @ P @ x + x @ y, 0.5 * y @ P @ y - x @ y])
    assert float(torch.cat([x, y]).detach().norm()) < 1e-8


def bilinear_players():
    x = torch.tensor([1.0, -0.5], dtype=DT, requires_grad=True)
    y = torch.tensor([0.3, 0.8], dtype=DT, requires_grad=True)

    def closure():
        return [0.5 * (x**2).sum() + x @ y, 0.5 * (y**2).sum() - x @ y]

    return [[x], [y]], closure


@pytest.mark.parametrize("method", ["extragradient", "past-extragradient", "optimistic", "consensus", "sga", "lead",
                                    "hamiltonian"])
def test_is_a_base_of_the_other_methods(method):
    players, closure = bilinear_players()
    opt = build(method, players, base="adahessian", lr=0.05)
    assert opt.requires_double_backward
    for _ in range(30):
        opt.step(closure)
    assert opt.counts["hvp"] > 0
    assert all(torch.isfinite(p).all() for ps in players for p in ps)
    assert float(torch.cat([p.detach() for ps in players for p in ps]).norm()) < 1.2


def test_refuses_zeroth_order_gradients():
    players, _ = bilinear_players()
    with pytest.raises(ConfigError, match="optim.grad"):
        build("adahessian", players, grad="zo")


def test_trains_a_small_gan_with_batchnorm_and_dropout():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2)).to(DT)
    D = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4, 1)).to(DT)
    real, z = torch.randn(32, 2, dtype=DT) + 1, torch.randn(32, 2, dtype=DT)

    def closure():
        d_fake, d_real = D(G(z).unsqueeze(1)), D(real.unsqueeze(1))
        sp = nn.functional.softplus
        return [sp(-d_fake).mean(), sp(-d_real).mean() + sp(d_fake).mean()]

    for hvp in ("exact", "fd"):
        opt = build("adahessian", [list(G.parameters()), list(D.parameters())], buffers=list(G.buffers()),
                    lr=0.01, hvp=hvp, scheme="alternating")
        for _ in range(3):
            losses = opt.step(closure)
        assert all(math.isfinite(v) for v in losses)
