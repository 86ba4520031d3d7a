"""Analytic games (saddlepoint.games.analytic): equilibria, fields and losses against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from saddlepoint.games import GAMES, BilinearGame, DiracGAN, QuadraticGame, build_game


def test_registered_games() -> None:
    assert {"bilinear", "dirac", "quadratic"} <= set(GAMES.names())


@pytest.mark.parametrize("name", GAMES.names())
def test_every_registered_game_has_finite_losses_and_a_distance(name: str) -> None:
    """Every game, its default options: one loss per player, finite, differentiable; a finite distance to its
    equilibrium (zero at the equilibrium when the game knows it in closed form)."""
    game = build_game(name)
    losses = game.losses()
    assert len(losses) == len(game.players) >= 2
    assert all(torch.isfinite(loss).all() for loss in losses)
    for i, params in enumerate(game.players):
        grads = torch.autograd.grad(losses[i], params, retain_graph=True, allow_unused=True)
        assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert math.isfinite(game.distance())


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_bilinear_equilibrium_zeroes_the_field(dim: int) -> None:
    game = BilinearGame(seed=dim, dim=dim)
    x, y = game.equilibrium()
    assert torch.allclose(game.A @ y + game.b, torch.zeros(dim, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(game.A.T @ x + game.c, torch.zeros(dim, dtype=torch.float64), atol=1e-10)
    assert game.distance() > 0
    with torch.no_grad():
        game.x.copy_(x)
        game.y.copy_(y)
    losses = game.losses()
    grads = torch.autograd.grad(losses[0], [game.x, game.y])
    assert all(float(g.abs().max()) < 1e-10 for g in grads)
    assert game.distance() < 1e-12


def test_quadratic_game_is_strongly_monotone() -> None:
    game = QuadraticGame(seed=1, dim=3, mu=0.2)
    M = game.jacobian()
    sym = 0.5 * (M + M.T)
    assert float(torch.linalg.eigvalsh(sym).min()) >= 0.2 - 1e-12
    # ξ(z) = M z matches autograd
    losses = game.losses()
    gx = torch.autograd.grad(losses[0], game.x, retain_graph=True)[0]
    gy = torch.autograd.grad(losses[1], game.y)[0]
    z = torch.cat([game.x.detach(), game.y.detach()])
    assert torch.allclose(torch.cat([gx, gy]), M @ z, atol=1e-12)


def test_dirac_gan_losses_and_r1() -> None:
    game = DiracGAN(loss="ns", penalty="r1", penalty_weight=3.0, theta0=0.5, psi0=-2.0)
    loss_g, loss_d = game.losses()
    # d_real = 0, d_fake = ψθ = −1; L_G = softplus(1); L_D = softplus(0) + softplus(−1) + γ/2 ψ²
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert float(loss_g.detach()) == pytest.approx(sp(1.0), rel=1e-12)
    assert float(loss_d.detach()) == pytest.approx(sp(0.0) + sp(-1.0) + 1.5 * 4.0, rel=1e-12)
    assert game.distance() == pytest.approx(math.hypot(0.5, 2.0))
