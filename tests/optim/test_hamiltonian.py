"""Hamiltonian gradient descent (saddlepoint.optim.hamiltonian), float64.

Bilinear f = xᵀAy (x minimises, y maximises): ξ = (Ay, −Aᵀx), J = [[0, A], [−Aᵀ, 0]], ∇½‖ξ‖² = Jᵀξ = (AAᵀx, AᵀAy),
so with base sgd x_t = (I − ηAAᵀ)ᵗ x₀ and y_t = (I − ηAᵀA)ᵗ y₀ exactly.
"""

from __future__ import annotations

import torch

from saddlepoint.games.analytic import BilinearGame
from saddlepoint.optim import build

DT = torch.float64


def test_bilinear_iterates_are_the_matrix_power():
    game = BilinearGame(seed=3, dim=3, bias=False)
    A, eta, steps = game.A, 0.05, 60
    x0, y0 = (t.clone() for t in game.flat())
    opt = build("hamiltonian", game.players, lr=eta)
    for _ in range(steps):
        opt.step(game.losses)
    eye = torch.eye(3, dtype=DT)
    x_t = torch.linalg.matrix_power(eye - eta * A @ A.T, steps) @ x0
    y_t = torch.linalg.matrix_power(eye - eta * A.T @ A, steps) @ y0
    x, y = game.flat()
    assert torch.allclose(x, x_t, rtol=1e-12, atol=1e-13) and torch.allclose(y, y_t, rtol=1e-12, atol=1e-13)
    assert opt.counts["hvp"] == steps


def test_two_minibatches_give_the_symmetrised_product():
    """f_b = xᵀA_b y on two 'minibatches' b ∈ {a, c}: the stochastic step is −η·½(J_aᵀξ_c + J_cᵀξ_a)."""
    gen = torch.Generator().manual_seed(0)
    A_a, A_c = torch.randn(2, 2, generator=gen, dtype=DT), torch.randn(2, 2, generator=gen, dtype=DT)
    x = torch.tensor([1.0, -1.0], dtype=DT, requires_grad=True)
    y = torch.tensor([0.5, 2.0], dtype=DT, requires_grad=True)
    x0, y0, eta = x.detach().clone(), y.detach().clone(), 0.1
    opt = build("hamiltonian", [[x], [y]], lr=eta)
    closures = [lambda A=A: [x @ A @ y, -(x @ A @ y)] for A in (A_a, A_c)]
    opt.step(tuple(closures))
    # ξ_b = (A_b y, −A_bᵀ x); J_bᵀ v = (−A_b v_y, A_bᵀ v_x)
    xi = {k: (A @ y0, -A.T @ x0) for k, A in (("a", A_a), ("c", A_c))}
    jt = {k: lambda v, A=A: (-A @ v[1], A.T @ v[0]) for k, A in (("a", A_a), ("c", A_c))}
    gx = 0.5 * (jt["a"](xi["c"])[0] + jt["c"](xi["a"])[0])
    gy = 0.5 * (jt["a"](xi["c"])[1] + jt["c"](xi["a"])[1])
    assert torch.allclose(x.detach(), x0 - eta * gx, atol=1e-14)
    assert torch.allclose(y.detach(), y0 - eta * gy, atol=1e-14)
    assert opt.counts["closure"] == 2 and opt.counts["hvp"] == 2 and opt.wants_independent_batches
