"""Consensus optimization and SGA (saddlepoint.optim.second_order), and what the whole second-order family
shares (CGD and ACGD included): iteration-matrix rates, finite differences against exact products, BatchNorm,
state round trips (float64 throughout)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.games import BilinearGame, DiracGAN, QuadraticGame
from saddlepoint.optim import build
from saddlepoint.optim.derivatives import flatten
from saddlepoint.optim.rules import RULES, rule_names

from .toy_games import DT, HP, SmoothGAN, run, well_conditioned, z_of

METHODS = ["consensus", "sga", "cgd", "acgd"]


@pytest.mark.parametrize("name", ["consensus", "sga", "acgd"])
def test_methods_converge_on_bilinear(name: str) -> None:
    game = BilinearGame(seed=2, A=well_conditioned(3, 5))
    hp = {"lr": 0.1, "tol": 1e-12} if name == "acgd" else {"lr": 0.2}
    dist = run(game, name, 400, **hp)
    assert dist[-1] < 1e-6 * dist[0], dist[-1]


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
    dist = run(game, name, 600, **hp)
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
    dist = run(plain, "sgd", 1000, lr=0.1)
    # circles around (0, 0) at a radius that hardly changes, never approaching it
    assert min(dist[-200:]) > 0.3 * dist[0]
    assert dist[-200] - dist[-1] < 0.01
    wgan = DiracGAN(loss="wgan")  # bilinear ψθ: spirals out at √(1 + η²) per step
    dist = run(wgan, "sgd", 100, lr=0.1)
    assert dist[-1] == pytest.approx(dist[0] * 1.01**50, rel=1e-9)
    reg = DiracGAN(loss="ns", penalty="r1", penalty_weight=1.0)
    dist = run(reg, "sgd", 1000, lr=0.1)
    assert dist[-1] < 1e-6


# ----------------------------------------------------------------------------- small GAN networks
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
    for name, per_step in [("consensus", 1), ("sga", 2)]:  # SGA: the paper's two products
        g = copy.deepcopy(game)
        opt = build(name, g.players, lr=0.1)
        for _ in range(3):
            opt.step(g.losses)
        assert opt.counts == {"closure": 3, "grad": 6, "hvp": 3 * per_step}


def test_bad_hyper_parameters() -> None:
    game = BilinearGame(seed=0)
    with pytest.raises(ConfigError, match="optim.base"):
        build("consensus", game.players, base="lbfgs")
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        build("sga", game.players, gamma=1.0)


def test_the_family_declares_double_backward():
    """Training code reads the attribute (never the class) to refuse compiled models and bfloat16 autocast."""
    game = BilinearGame(seed=0)
    for name in METHODS:
        assert build(name, game.players).requires_double_backward is True
    for name in ("sgd", "adam", "extragradient", "optimistic"):
        assert build(name, game.players).requires_double_backward is False
    assert build("lookahead", game.players, inner="sga").requires_double_backward is True


@pytest.mark.parametrize("name", ["consensus", "sga"])
def test_heavy_ball_base_follows_the_adjusted_field(name: str) -> None:
    """base: momentum (accepted since the rules live in one registry): v ← βv − η ṽ, θ ← θ + v with ṽ the
    adjusted field, i.e. with β = 0 exactly the base: sgd step."""
    steps = {}
    for base, extra in (("sgd", {}), ("momentum", {"momentum": 0.0})):
        game = BilinearGame(seed=5, dim=2)
        opt = build(name, game.players, lr=0.1, base=base, **extra)
        for _ in range(3):
            opt.step(game.losses)
        steps[base] = z_of(game)
    assert torch.allclose(steps["sgd"], steps["momentum"], rtol=0, atol=1e-15)


@pytest.mark.parametrize("method", ["consensus", "sga"])
@pytest.mark.parametrize("base", rule_names(look_ahead=False))
def test_field_methods_take_their_base_rules_own_defaults(method, base):
    """A shared key (eps, betas) gets the chosen base's default, whatever other rules declare for it."""
    opt = build(method, [[torch.zeros(2, requires_grad=True)], [torch.zeros(2, requires_grad=True)]], base=base)
    for key, value in RULES.get(base).defaults.items():
        if key != "lr":
            assert opt.hp[0][key] == value and opt.hp[1][key] == value, key
