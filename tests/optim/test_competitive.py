"""CGD and ACGD (saddlepoint.optim.competitive) against closed forms, dense solves and each other (float64)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.games import BilinearGame, DiracGAN
from saddlepoint.optim import build

from .toy_games import DT, SmoothGAN, orthogonal, run, well_conditioned, z_of


# ----------------------------------------------------------------------------- CGD, closed form
@pytest.mark.parametrize("zero_sum,krylov", [("auto", "cg"), ("auto", "cr"), (False, "cg")])
@pytest.mark.parametrize("lr", [0.3, [0.3, 0.2]])
def test_cgd_step_equals_dense_solve_on_bilinear(zero_sum, krylov, lr) -> None:
    game = BilinearGame(seed=3, dim=3)
    A, b, c = game.A, game.b, game.c
    x, y = game.x.detach().clone(), game.y.detach().clone()
    ex, ey = (lr, lr) if isinstance(lr, float) else lr
    eye = torch.eye(3, dtype=DT)
    # [[I, η_x D_xy f], [η_y D_yx g, I]] Δ = −[η_x ∇_x f; η_y ∇_y g],  f = xᵀAy + bᵀx + cᵀy, g = −f
    N = torch.cat([torch.cat([eye, ex * A], 1), torch.cat([-ey * A.T, eye], 1)])
    rhs = -torch.cat([ex * (A @ y + b), ey * -(A.T @ x + c)])
    want = torch.linalg.solve(N, rhs)
    opt = build("cgd", game.players, lr=lr, tol=1e-15, zero_sum=zero_sum, krylov=krylov)
    opt.step(game.losses)
    got = z_of(game) - torch.cat([x, y])
    assert torch.allclose(got, want, rtol=0, atol=1e-10)
    assert opt.last_solve["zero_sum"] is (zero_sum == "auto")
    # the closed form of the zero-sum update: Δx = −η(I + η²AAᵀ)⁻¹(∇_x f + η A ∇_y f) (scalar η)
    if isinstance(lr, float):
        dx = -lr * torch.linalg.solve(eye + lr**2 * A @ A.T, (A @ y + b) + lr * A @ (A.T @ x + c))
        assert torch.allclose(got[:3], dx, atol=1e-10)


def test_cgd_general_sum_step_equals_dense_block_solve() -> None:
    """f = ½xᵀPx + xᵀAy (x), g = ½yᵀQy + xᵀBy (y): D_xy f = A, D_yx g = Bᵀ."""
    gen = torch.Generator().manual_seed(7)
    P, Q = torch.eye(3, dtype=DT) * 0.5, torch.eye(2, dtype=DT) * 0.3
    A, B = torch.randn(3, 2, generator=gen, dtype=DT), torch.randn(3, 2, generator=gen, dtype=DT)
    x = nn.Parameter(torch.randn(3, generator=gen, dtype=DT))
    y = nn.Parameter(torch.randn(2, generator=gen, dtype=DT))

    def losses():
        return [0.5 * x @ P @ x + x @ A @ y, 0.5 * y @ Q @ y + x @ B @ y]

    eta = 0.4
    N = torch.cat([torch.cat([torch.eye(3, dtype=DT), eta * A], 1), torch.cat([eta * B.T, torch.eye(2, dtype=DT)], 1)])
    rhs = -eta * torch.cat([P @ x.detach() + A @ y.detach(), Q @ y.detach() + B.T @ x.detach()])
    want = torch.linalg.solve(N, rhs)
    z0 = torch.cat([x.detach(), y.detach()]).clone()
    opt = build("cgd", [[x], [y]], lr=eta, tol=1e-15)
    opt.step(losses)
    assert opt.state["zero_sum"] is False and opt.last_solve["zero_sum"] is False
    assert torch.allclose(torch.cat([x.detach(), y.detach()]) - z0, want, atol=1e-10)


# ----------------------------------------------------------------------------- bilinear rates
def test_cgd_contracts_where_gda_diverges() -> None:
    sigma, eta = 2.0, 0.5
    A = sigma * orthogonal(3, 11)
    zero = torch.zeros(3, dtype=DT)

    def game():
        return BilinearGame(seed=1, A=A, b=zero, c=zero)

    d_cgd = run(game(), "cgd", 20, lr=eta, tol=1e-14)
    d_gda = run(game(), "sgd", 20, lr=eta)
    factor = (1 + eta**2 * sigma**2) ** 0.5
    for t in range(20):
        assert d_cgd[t + 1] / d_cgd[t] == pytest.approx(1 / factor, rel=1e-9)
        assert d_gda[t + 1] / d_gda[t] == pytest.approx(factor, rel=1e-9)


def test_acgd_keeps_warm_start_and_moments_in_state_dict() -> None:
    game = BilinearGame(seed=4, A=well_conditioned(3, 6))
    opt = build("acgd", game.players, lr=0.1)
    for _ in range(3):
        opt.step(game.losses)
    sd = opt.state_dict()
    assert sd["state"]["warm"].shape == (3,)  # zero-sum: CG in the symmetrised x-variable
    for i in range(2):
        assert sd["state"]["players"][i]["t"] == 3
        assert sd["state"]["players"][i]["v"].shape == (3,)
    assert sd["state"]["zero_sum"] is True


def test_zero_sum_detection_follows_the_loss() -> None:
    # hinge is locally linear in the logits (relu(1 + ψθ) = 1 + ψθ here): locally zero-sum
    cases = [("minimax", True), ("wgan", True), ("hinge", True), ("ns", False), ("lsgan", False)]
    for loss, expected in cases:
        game = DiracGAN(loss=loss, theta0=0.7, psi0=0.4)
        opt = build("cgd", game.players, lr=0.1)
        opt.step(game.losses)
        assert opt.state["zero_sum"] is expected, loss


def test_product_counts_per_step() -> None:
    game = BilinearGame(seed=8, dim=4)
    # zero-sum: 1 rhs + 2 per CG iteration (+ 2 for a warm-start residual); Δy from CG's running
    # Dᵀ(√η_x u), no product (``recover: fresh``: + 1)
    for name, extra, hp in [
        ("cgd", 1, {}),
        ("acgd", 3, {}),
        ("acgd", 3, {"krylov": "cr"}),
        ("cgd", 2, {"recover": "fresh"}),
        ("acgd", 4, {"recover": "fresh"}),
    ]:
        g = copy.deepcopy(game)
        opt = build(name, g.players, lr=0.2, tol=1e-10, **hp)
        opt.step(g.losses)
        for _ in range(5):
            before = dict(opt.counts)
            opt.step(g.losses)
            k = opt.last_solve["iterations"]
            assert k > 0
            hvp = opt.counts["hvp"] - before["hvp"]
            assert hvp == extra + 2 * k, (name, hp, hvp, k)
            assert hvp <= 5 + 2 * k
            assert opt.counts["grad"] - before["grad"] == 2
            assert opt.counts["closure"] - before["closure"] == 1


@pytest.mark.parametrize("name", ["cgd", "acgd"])
def test_incremental_recovery_matches_a_fresh_product(name: str) -> None:
    """Δy from CG's running Dᵀ(√η_x u) equals Δy from a fresh product (float64 rounding only)."""
    a = SmoothGAN("minimax")
    b = copy.deepcopy(a)
    opt_a = build(name, a.players, lr=0.05, tol=1e-8, zero_sum=True)
    opt_b = build(name, b.players, lr=0.05, tol=1e-8, zero_sum=True, recover="fresh")
    for _ in range(4):
        opt_a.step(a.losses)
        opt_b.step(b.losses)
        assert opt_a.last_solve["iterations"] == opt_b.last_solve["iterations"] > 0
        diff = float(torch.linalg.vector_norm(a.flat() - b.flat()))
        assert diff <= 1e-12 * float(torch.linalg.vector_norm(a.flat())), diff


@pytest.mark.parametrize("loss", ["minimax", "ns"])
def test_scaled_warm_start_gives_the_same_step(loss: str) -> None:
    """warm_scale only changes the Krylov start: at a tight tolerance the steps agree."""
    a = SmoothGAN(loss)
    b = copy.deepcopy(a)
    opt_a = build("acgd", a.players, lr=0.05, tol=1e-12, warm_scale=True)
    opt_b = build("acgd", b.players, lr=0.05, tol=1e-12, warm_scale=False)
    for step in range(4):
        opt_a.step(a.losses)
        opt_b.step(b.losses)
        assert ("warm_scale" in opt_a.last_solve) == (step > 0 and loss == "minimax")
        assert torch.allclose(a.flat(), b.flat(), rtol=0, atol=1e-9)


def test_single_active_player_takes_a_gradient_step() -> None:
    for name in ("cgd", "acgd"):
        game = BilinearGame(seed=9, dim=2)
        x0, y0 = game.x.detach().clone(), game.y.detach().clone()
        opt = build(name, game.players, lr=0.1)
        opt.step(game.losses, players=[1])
        assert torch.equal(game.x.detach(), x0)
        g_y = -(game.A.T @ x0 + game.c)
        if name == "cgd":
            assert torch.allclose(game.y.detach(), y0 - 0.1 * g_y, atol=1e-14)
        else:  # first ACGD step: η = lr·√(1−β)/(√((1−β)g²) + ε) ≈ lr/|g|
            assert torch.allclose(game.y.detach(), y0 - 0.1 * torch.sign(g_y), atol=1e-6)


def test_bad_hyper_parameters() -> None:
    game = BilinearGame(seed=0)
    with pytest.raises(ConfigError, match="optim.hvp"):
        build("cgd", game.players, hvp="adjoint")
    with pytest.raises(ConfigError, match="optim.zero_sum"):
        build("acgd", game.players, zero_sum="maybe")
    with pytest.raises(ConfigError, match="optim.krylov"):
        build("acgd", game.players, krylov="minres")
    with pytest.raises(ConfigError, match="optim.recover"):
        build("cgd", game.players, recover="lazy")
    with pytest.raises(ConfigError, match="two-player"):
        build("cgd", [game.players[0], game.players[1], [nn.Parameter(torch.zeros(1))]])
