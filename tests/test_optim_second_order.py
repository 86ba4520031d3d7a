"""Consensus, SGA, CGD and ACGD against closed forms, iteration-matrix rates and each other
(float64 throughout)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saddlepoint.errors import ConfigError
from saddlepoint.games import BilinearGame, DiracGAN, QuadraticGame
from saddlepoint.optim import build
from saddlepoint.optim.linalg import flatten

DT = torch.float64
METHODS = ["consensus", "sga", "cgd", "acgd"]


def _orthogonal(n: int, seed: int) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=DT))
    return q


def _well_conditioned(n: int, seed: int) -> Tensor:
    """Q diag(1 … 2) Q'ᵀ: singular values between 1 and 2."""
    s = torch.linspace(1.0, 2.0, n, dtype=DT)
    return _orthogonal(n, seed) @ torch.diag(s) @ _orthogonal(n, seed + 1).T


def _z(game) -> Tensor:
    return torch.cat(game.flat())


def _run(game, name: str, steps: int, **hp) -> list[float]:
    opt = build(name, game.players, **hp)
    dist = [game.distance()]
    for _ in range(steps):
        opt.step(game.losses)
        dist.append(game.distance())
    return dist


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
    got = _z(game) - torch.cat([x, y])
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
    A = sigma * _orthogonal(3, 11)
    zero = torch.zeros(3, dtype=DT)

    def game():
        return BilinearGame(seed=1, A=A, b=zero, c=zero)

    d_cgd = _run(game(), "cgd", 20, lr=eta, tol=1e-14)
    d_gda = _run(game(), "sgd", 20, lr=eta)
    factor = (1 + eta**2 * sigma**2) ** 0.5
    for t in range(20):
        assert d_cgd[t + 1] / d_cgd[t] == pytest.approx(1 / factor, rel=1e-9)
        assert d_gda[t + 1] / d_gda[t] == pytest.approx(factor, rel=1e-9)


@pytest.mark.parametrize("name", ["consensus", "sga", "acgd"])
def test_methods_converge_on_bilinear(name: str) -> None:
    game = BilinearGame(seed=2, A=_well_conditioned(3, 5))
    hp = {"lr": 0.1, "tol": 1e-12} if name == "acgd" else {"lr": 0.2}
    dist = _run(game, name, 400, **hp)
    assert dist[-1] < 1e-6 * dist[0], dist[-1]


def test_acgd_keeps_warm_start_and_moments_in_state_dict() -> None:
    game = BilinearGame(seed=4, A=_well_conditioned(3, 6))
    opt = build("acgd", game.players, lr=0.1)
    for _ in range(3):
        opt.step(game.losses)
    sd = opt.state_dict()
    assert sd["state"]["warm"].shape == (3,)  # zero-sum: CG in the symmetrised x-variable
    for i in range(2):
        assert sd["state"]["players"][i]["t"] == 3
        assert sd["state"]["players"][i]["v"].shape == (3,)
    assert sd["state"]["zero_sum"] is True


# ----------------------------------------------------------------------------- quadratic game rates
def _rate(dist: list[float], start: int) -> float:
    return (dist[-1] / dist[start]) ** (1.0 / (len(dist) - 1 - start))


@pytest.mark.parametrize("name", ["sgd", "cgd", "consensus", "sga"])
def test_linear_rates_match_iteration_matrix(name: str) -> None:
    game = QuadraticGame(seed=0, dim=3, mu=0.3)
    M = game.jacobian()
    n = M.shape[0]
    eta, gamma, lam = 0.1, 0.5, 1.0
    eye = torch.eye(n, dtype=DT)
    if name == "sgd":
        T = eye - eta * M
        hp = {"lr": eta}
    elif name == "cgd":
        A = game.A
        N = torch.cat(
            [
                torch.cat([torch.eye(3, dtype=DT), eta * A], 1),
                torch.cat([-eta * A.T, torch.eye(3, dtype=DT)], 1),
            ]
        )
        T = eye - eta * torch.linalg.solve(N, M)
        hp = {"lr": eta, "tol": 1e-15}
    elif name == "consensus":
        T = eye - eta * (eye + gamma * M.T) @ M
        hp = {"lr": eta, "gamma": gamma}
    else:
        T = eye - eta * (eye + lam * 0.5 * (M.T - M)) @ M
        hp = {"lr": eta, "lam": lam}
    rho = float(torch.linalg.eigvals(T).abs().max())
    assert 0.5 < rho < 0.995
    dist = _run(game, name, 600, **hp)
    assert _rate(dist, 100) == pytest.approx(rho, rel=1e-2)


# ----------------------------------------------------------------------------- SGA, n players
def test_sga_three_player_game() -> None:
    gen = torch.Generator().manual_seed(0)
    xs = [nn.Parameter(torch.randn(2, generator=gen, dtype=DT)) for _ in range(3)]

    def losses():  # f_i = x_iᵀ(x_{i+1} − x_{i−1}): zero-sum over three players, J antisymmetric
        return [xs[i] @ (xs[(i + 1) % 3] - xs[(i - 1) % 3]) for i in range(3)]

    def field_norm() -> float:
        return float(flatten([(xs[(i + 1) % 3] - xs[(i - 1) % 3]).detach() for i in range(3)]).norm())

    start = [x.detach().clone() for x in xs]
    for align in (False, True):
        for x, s in zip(xs, start, strict=True):
            x.data.copy_(s)
        opt = build("sga", [[x] for x in xs], lr=0.1, align=align)
        n0 = field_norm()
        for _ in range(200):
            opt.step(losses)
        assert field_norm() < 1e-3 * n0
        # one product per player for Aᵀξ, plus Jᵀξ for the alignment
        assert opt.counts["hvp"] == (800 if align else 600) and opt.counts["closure"] == 200
    for x, s in zip(xs, start, strict=True):
        x.data.copy_(s)
    gda = build("sgd", [[x] for x in xs], lr=0.1)
    n0 = field_norm()
    for _ in range(200):
        gda.step(losses)
    assert field_norm() > n0  # simultaneous GDA spirals out


# ----------------------------------------------------------------------------- DiracGAN
def test_dirac_gan_needs_r1() -> None:
    plain = DiracGAN(loss="ns")
    dist = _run(plain, "sgd", 1000, lr=0.1)
    # circles around (0, 0) at a radius that hardly changes, never approaching it
    assert min(dist[-200:]) > 0.3 * dist[0]
    assert dist[-200] - dist[-1] < 0.01
    wgan = DiracGAN(loss="wgan")  # bilinear ψθ: spirals out at √(1 + η²) per step
    dist = _run(wgan, "sgd", 100, lr=0.1)
    assert dist[-1] == pytest.approx(dist[0] * 1.01**50, rel=1e-9)
    reg = DiracGAN(loss="ns", penalty="r1", penalty_weight=1.0)
    dist = _run(reg, "sgd", 1000, lr=0.1)
    assert dist[-1] < 1e-6


def test_zero_sum_detection_follows_the_loss() -> None:
    # hinge is locally linear in the logits (relu(1 + ψθ) = 1 + ψθ here): locally zero-sum
    cases = [("minimax", True), ("wgan", True), ("hinge", True), ("ns", False), ("lsgan", False)]
    for loss, expected in cases:
        game = DiracGAN(loss=loss, theta0=0.7, psi0=0.4)
        opt = build("cgd", game.players, lr=0.1)
        opt.step(game.losses)
        assert opt.state["zero_sum"] is expected, loss


# ----------------------------------------------------------------------------- small GAN networks
class SmoothGAN:
    """A float64 MLP GAN with smooth activations (and optional BatchNorm in G)."""

    def __init__(self, loss: str = "minimax", bn: bool = False, seed: int = 0) -> None:
        torch.manual_seed(seed)
        g_layers: list[nn.Module] = [nn.Linear(2, 6)]
        if bn:
            g_layers.append(nn.BatchNorm1d(6))
        g_layers += [nn.Tanh(), nn.Linear(6, 2)]
        self.G = nn.Sequential(*g_layers).to(DT)
        self.D = nn.Sequential(nn.Linear(2, 6), nn.Softplus(), nn.Linear(6, 1)).to(DT)
        self.z = torch.randn(16, 2, dtype=DT)
        self.real = torch.randn(16, 2, dtype=DT) + 1.0
        self.loss = loss
        self.players = [list(self.G.parameters()), list(self.D.parameters())]
        self.buffers = list(self.G.buffers())

    def losses(self) -> list[Tensor]:
        d_fake = self.D(self.G(self.z)).squeeze(1)
        d_real = self.D(self.real).squeeze(1)
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        loss_g = -F.softplus(d_fake).mean() if self.loss == "minimax" else F.softplus(-d_fake).mean()
        return [loss_g, loss_d]

    def flat(self) -> Tensor:
        return flatten([p.detach() for ps in self.players for p in ps])


HP = {
    "consensus": {"lr": 0.05, "gamma": 0.5},
    "sga": {"lr": 0.05, "align": True},
    "cgd": {"lr": 0.05, "tol": 1e-13, "max_iter": 200},
    "acgd": {"lr": 0.01, "tol": 1e-13, "max_iter": 200},
}


@pytest.mark.parametrize("loss", ["minimax", "ns"])
@pytest.mark.parametrize("name", METHODS)
def test_fd_step_close_to_exact_step(name: str, loss: str) -> None:
    steps = {}
    for mode in ("exact", "fd"):
        gan = SmoothGAN(loss)
        before = gan.flat()
        opt = build(name, gan.players, hvp=mode, **HP[name])
        opt.step(gan.losses)
        steps[mode] = gan.flat() - before
    rel = float((steps["fd"] - steps["exact"]).norm() / steps["exact"].norm())
    assert rel < 1e-5, rel


@pytest.mark.parametrize("name", METHODS)
def test_batchnorm_generator(name: str) -> None:
    for mode in ("exact", "fd"):
        gan = SmoothGAN("ns", bn=True)
        ref = copy.deepcopy(gan.G)
        ref(gan.z)  # one forward in train mode: the statistics one step should leave behind
        opt = build(name, gan.players, buffers=gan.buffers, hvp=mode, **HP[name])
        opt.step(gan.losses)
        assert torch.isfinite(gan.flat()).all()
        bn = gan.G[1]
        assert torch.allclose(bn.running_mean, ref[1].running_mean, atol=1e-15)
        assert torch.allclose(bn.running_var, ref[1].running_var, atol=1e-15)
        assert int(bn.num_batches_tracked) == 1


# ----------------------------------------------------------------------------- state and costs
@pytest.mark.parametrize("loss", ["minimax", "ns"])
@pytest.mark.parametrize("name", METHODS)
def test_state_dict_round_trip_gives_identical_next_steps(name: str, loss: str) -> None:
    hp = dict(HP[name], max_grad_norm=0.5)
    if name in ("consensus", "sga"):
        hp["base"] = "rmsprop" if name == "consensus" else "adam"
        hp["lr"] = 1e-3
    a = SmoothGAN(loss)
    opt_a = build(name, a.players, **hp)
    for _ in range(3):
        opt_a.step(a.losses)
    sd = copy.deepcopy(opt_a.state_dict())
    b = SmoothGAN(loss)
    with torch.no_grad():
        for pa, pb in zip(a.players[0] + a.players[1], b.players[0] + b.players[1], strict=True):
            pb.copy_(pa)
    opt_b = build(name, b.players, **hp)
    opt_b.load_state_dict(sd)
    for _ in range(2):
        opt_a.step(a.losses)
        opt_b.step(b.losses)
    assert torch.equal(a.flat(), b.flat())
    assert opt_a.counts == opt_b.counts


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
    for name, per_step in [("consensus", 1), ("sga", 2)]:  # SGA: the paper's two products
        g = copy.deepcopy(game)
        opt = build(name, g.players, lr=0.1)
        for _ in range(3):
            opt.step(g.losses)
        assert opt.counts == {"closure": 3, "grad": 6, "hvp": 3 * per_step}


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
    with pytest.raises(ConfigError, match="optim.base"):
        build("consensus", game.players, base="lbfgs")
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        build("sga", game.players, gamma=1.0)
