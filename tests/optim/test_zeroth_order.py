"""Zeroth-order gradients (saddlepoint.optim.zeroth_order, ``optim.grad: zo``), float64.

Closed forms on a quadratic f = ½θᵀHθ + bᵀθ with gradient g = Hθ + b (derived in the module docstring):
central differences are exact along every direction, so ĝ = (s/q) Σ_k u_k u_kᵀ g, unbiased, with mean squared
error (E‖s u uᵀ g‖² − ‖g‖²)/q: (d + 1)‖g‖²/q for Gaussian u (E[(uᵀg)²‖u‖²] = (d + 2)‖g‖²), (d − 1)‖g‖²/q for u
uniform on the sphere with s = d and for Rademacher u (‖u‖² = d). Forward differences add (μ/2)uᵀHu along u:
still unbiased (odd moments vanish); coordinate-wise, off by exactly (μ/2)·diag(H).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from saddlepoint.config import build_config, nest, parse_sets
from saddlepoint.errors import ConfigError
from saddlepoint.games.gan import GANClosure
from saddlepoint.optim import build
from saddlepoint.optim.zeroth_order import estimate, resolve_directions, seed_for, zo_options

DT = torch.float64
D = 12


def quadratic(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(D, D, generator=gen, dtype=DT)
    H = B @ B.T / D + torch.eye(D, dtype=DT)
    b = torch.randn(D, generator=gen, dtype=DT)
    theta = torch.randn(D, generator=gen, dtype=DT).requires_grad_()
    f = lambda: float((0.5 * theta @ H @ theta + b @ theta).detach())  # noqa: E731
    return theta, f, H, (H @ theta + b).detach()


MSE = {"gaussian": lambda d: d + 1, "sphere": lambda d: d - 1, "rademacher": lambda d: d - 1}


@pytest.mark.parametrize("kind", ["gaussian", "sphere", "rademacher"])
def test_random_directions_unbiased_with_the_closed_form_error(kind):
    """N = 1000 estimates with q = 4 central differences: mean squared error (d ± 1)‖g‖²/q within 3 Monte Carlo
    standard errors; the mean along g and along a coordinate within 3 standard errors of the truth."""
    theta, f, _, g = quadratic()
    q, n = 4, 1000
    est = torch.stack([torch.cat(estimate(f, [theta], directions=kind, difference="central", q=q, mu=0.3,
                                          seed=seed_for(7, k))[0]) for k in range(n)])
    err = ((est - g) ** 2).sum(1)
    expected = MSE[kind](D) * float(g @ g) / q
    se = float(err.std()) / math.sqrt(n)
    assert abs(float(err.mean()) - expected) <= 3 * se, (float(err.mean()), expected, se)
    for w in (g / g.norm(), torch.eye(D, dtype=DT)[0]):
        proj = (est - g) @ w
        assert abs(float(proj.mean())) <= 3 * float(proj.std()) / math.sqrt(n)


def test_forward_random_differences_are_unbiased_on_quadratics():
    theta, f, _, g = quadratic(1)
    n = 1500
    est = torch.stack([torch.cat(estimate(f, [theta], directions="gaussian", difference="forward", q=2, mu=0.2,
                                          seed=seed_for(3, k))[0]) for k in range(n)])
    for w in (g / g.norm(), torch.eye(D, dtype=DT)[3]):
        proj = (est - g) @ w
        assert abs(float(proj.mean())) <= 3 * float(proj.std()) / math.sqrt(n)


def test_coordinate_differences_central_exact_forward_off_by_half_mu_diag_h():
    theta, f, H, g = quadratic(2)
    before = theta.detach().clone()
    for mu in (1e-3, 0.5):
        central, evals = estimate(f, [theta], directions="coordinate", difference="central", mu=mu)
        assert evals == 2 * D
        assert torch.allclose(central[0], g, rtol=0, atol=1e-9)
        forward, evals = estimate(f, [theta], directions="coordinate", difference="forward", mu=mu, f0=f())
        assert evals == D
        assert torch.allclose(forward[0] - g, 0.5 * mu * torch.diagonal(H), rtol=1e-7, atol=1e-9)
    assert torch.equal(theta.detach(), before)  # put back bit for bit


def test_auto_uses_coordinates_for_small_vectors():
    assert resolve_directions("auto", 5, 10) == "coordinate"
    assert resolve_directions("auto", 11, 10) == "gaussian"
    assert resolve_directions("sphere", 3, 10) == "sphere"


def test_options_are_validated_and_nested_config_keys_reach_the_optimizer():
    assert zo_options({"q": "7"})["q"] == 7
    with pytest.raises(ConfigError, match="optim.zo.q"):
        zo_options({"q": 0})
    with pytest.raises(ConfigError, match="optim.zo: unknown option"):
        zo_options({"directoins": "sphere"})
    cfg = build_config({"optim": {"name": "adam", "zo": {"mu": 0.01}}},
                       nest(parse_sets(["optim.zo.q=10", "optim.grad=zo"])))
    x = torch.zeros(2, dtype=DT, requires_grad=True)
    opt = build(cfg.optim.name, [[x]], **cfg.optim.hyper_parameters())
    assert opt.grad == "zo" and opt.zo["q"] == 10 and opt.zo["mu"] == 0.01
    assert build("sgd", [[x]], **{"grad": "zo", "zo.q": 3}).zo["q"] == 3  # the game runner's dotted keys
    with pytest.raises(ConfigError, match="optim.grad"):
        build("consensus", [[x], [x.detach().clone().requires_grad_()]], grad="zo")


class TinyGAN:
    """G with BatchNorm, D with Dropout, float64: the real GAN closure (fixed batch and noise)."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.G = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 2)).to(DT)
        self.D = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Dropout(0.3), nn.Linear(4, 1)).to(DT)
        self.real = torch.randn(16, 2, dtype=DT) + 1.0
        self.z = torch.randn(16, 2, dtype=DT)

    def closure(self) -> GANClosure:
        def loss_fn(d_real, d_fake):
            sp = nn.functional.softplus
            return sp(-d_fake).mean(), sp(-d_real).mean() + sp(d_fake).mean()

        return GANClosure(self.G, self.D, loss_fn, [], self.real, self.z, {})

    @property
    def players(self):
        return [list(self.G.parameters()), list(self.D.parameters())]


def test_one_estimate_sees_one_batch_noise_and_dropout_mask():
    """Coordinate-wise central differences through the GAN closure (dropout in D, BatchNorm in G) equal the
    backpropagated gradient to 1e-7: every evaluation of the estimate replays the same masks and statistics. The
    BatchNorm buffers after the step are those of one evaluation at θ."""
    ref = TinyGAN()
    torch.manual_seed(5)
    losses = ref.closure()()
    true = [torch.autograd.grad(losses[i], ref.players[i], retain_graph=True) for i in range(2)]
    buffers = [b.clone() for b in ref.G.buffers()]
    game = TinyGAN()
    opt = build("sgd", game.players, buffers=list(game.G.buffers()), lr=1.0, grad="zo",
                zo={"directions": "coordinate", "mu": 1e-5, "check_every": 1})
    before = [[p.detach().clone() for p in ps] for ps in game.players]
    torch.manual_seed(5)
    opt.step(game.closure())
    for i in range(2):
        step = [b - p.detach() for b, p in zip(before[i], game.players[i])]  # = ĝ (lr 1)
        for s, t in zip(step, true[i]):
            assert torch.allclose(s, t, rtol=1e-6, atol=1e-7)
        assert opt.stats()[f"zo_cosine_{i}"] == pytest.approx(1.0, abs=1e-9)
    assert all(torch.equal(a, b) for a, b in zip(game.G.buffers(), buffers))
    n = sum(p.numel() for ps in game.players for p in ps)
    assert opt.counts["forward"] == 2 * n and opt.stats()["zo_forward"] == 2 * n
    assert opt.counts["grad"] == 0  # the cosine check's gradients are diagnostics


def test_directions_come_from_the_seed_and_state_round_trips():
    def run(steps, seed=0, state=None):
        x = torch.tensor([1.0, -2.0, 0.5], dtype=DT, requires_grad=True)
        y = torch.tensor([0.3, 0.1, -1.0], dtype=DT, requires_grad=True)
        opt = build("adam", [[x], [y]], lr=0.01, grad="zo", zo={"directions": "gaussian", "q": 2, "seed": seed})
        if state is not None:
            x.data, y.data = state[0].clone(), state[1].clone()
            opt.load_state_dict(state[2])
        for _ in range(steps):
            opt.step(lambda: [(x * y).sum() + (x**2).sum(), -(x * y).sum() + (y**2).sum()])
        return x.detach().clone(), y.detach().clone(), opt.state_dict()

    a = run(5)
    b = run(3)
    c = run(2, state=b)
    assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])
    assert all(set(p) == {"m", "v", "t"} for p in a[2]["state"]["players"])  # Adam's moments: no directions
    d = run(5, seed=1)
    assert not torch.equal(a[0], d[0])


def test_zo_signsgd_is_signsgd_on_the_estimate():
    x = torch.tensor([0.5, -1.0], dtype=DT, requires_grad=True)
    opt = build("signsgd", [[x]], lr=0.1, grad="zo", zo={"directions": "coordinate"})
    opt.step(lambda: [((x - 2) ** 2).sum()])
    assert torch.allclose(x.detach(), torch.tensor([0.6, -0.9], dtype=DT))


@pytest.mark.parametrize("name", ["extragradient", "optimistic", "past-extragradient", "lookahead", "momentum"])
def test_every_first_order_method_takes_zeroth_order_gradients(name):
    """A strongly monotone game f_x = ½‖x‖² + xᵀy, f_y = ½‖y‖² − xᵀy (equilibrium 0); coordinate-wise central
    differences are exact on it, so each method moves as with autograd."""
    paths = []
    for grad in ("autograd", "zo"):
        x = torch.tensor([1.0, -1.0], dtype=DT, requires_grad=True)
        y = torch.tensor([0.5, 2.0], dtype=DT, requires_grad=True)
        hp = {"lr": 0.05, **({"base": "sgd"} if name not in ("lookahead", "momentum") else {})}
        opt = build(name, [[x], [y]], grad=grad, zo={"directions": "coordinate"}, **hp)

        def closure(x=x, y=y):
            return [0.5 * (x**2).sum() + x @ y, 0.5 * (y**2).sum() - x @ y]

        for _ in range(20):
            opt.step(closure)
        paths.append(torch.cat([x.detach(), y.detach()]))
    assert torch.allclose(paths[0], paths[1], atol=1e-8)
