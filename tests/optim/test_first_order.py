"""First-order game optimizers (sgd, momentum, nesterov, adam, rmsprop; simultaneous/alternating) and
the framework guarantees of the base class: closed-form dynamics on bilinear games, agreement with
torch.optim, per-player hyper-parameters, clipping, randomness and BatchNorm buffers within a step,
state_dict round trips."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.optim import build

from .toy_games import nonlinear_game, serialise, total_norm

DT = torch.float64


# ---------------------------------------------------------------------------------------- helpers
def bilinear(sigmas, seed=0, rotate=True):
    """f(x, y) = xᵀAy with A = U diag(σ) Vᵀ; player 0 (x) minimises f, player 1 (y) minimises −f."""
    g = torch.Generator().manual_seed(seed)
    n = len(sigmas)
    if rotate:
        U, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
        V, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    else:
        U = V = torch.eye(n, dtype=DT)
    A = U @ torch.diag(torch.tensor(sigmas, dtype=DT)) @ V.T
    x = torch.randn(n, generator=g, dtype=DT).requires_grad_()
    y = torch.randn(n, generator=g, dtype=DT).requires_grad_()

    def closure():
        f = x @ A @ y
        return [f, -f]

    return A, U, V, x, y, closure


def direction_norms(U, V, x, y):
    """‖(u_kᵀx, v_kᵀy)‖ for every singular direction k."""
    a, b = U.T @ x.detach(), V.T @ y.detach()
    return torch.sqrt(a**2 + b**2)


def assert_round_trip(name, warmup=4, **hp):
    """Build twice; load the first optimizer's state (through torch.save/load) into the second,
    whose parameters are copies: the next 3 steps must be bit-identical."""
    pa0, pa1, make_closure = nonlinear_game()
    opt_a = build(name, [pa0, pa1], **hp)
    closure_a = make_closure(pa0[0], pa1[0], pa1[1])
    for _ in range(warmup):
        opt_a.step(closure_a)
    state = serialise(opt_a.state_dict())
    pb0 = [p.detach().clone().requires_grad_() for p in pa0]
    pb1 = [p.detach().clone().requires_grad_() for p in pa1]
    opt_b = build(name, [pb0, pb1], **hp)
    opt_b.load_state_dict(state)
    closure_b = make_closure(pb0[0], pb1[0], pb1[1])
    for _ in range(3):
        la = opt_a.step(closure_a)
        lb = opt_b.step(closure_b)
        assert la == lb
        for p, q in zip(pa0 + pa1, pb0 + pb1, strict=True):
            assert torch.equal(p, q)
    assert opt_a.counts == opt_b.counts
    assert opt_a.step_count == opt_b.step_count


# ---------------------------------------------------------------------------------------- bilinear
def test_simultaneous_gda_spirals_out_at_exact_rate():
    sigmas = (1.0, 0.6, 0.3)
    lr = 0.1
    A, U, V, x, y, closure = bilinear(sigmas)
    opt = build("sgd", [[x], [y]], lr=lr, scheme="simultaneous")
    expected = torch.sqrt(1 + lr**2 * torch.tensor(sigmas, dtype=DT) ** 2)
    before = direction_norms(U, V, x, y)
    for _ in range(50):
        opt.step(closure)
        after = direction_norms(U, V, x, y)
        torch.testing.assert_close(after / before, expected, rtol=1e-10, atol=0)
        before = after


@pytest.mark.parametrize("order, sign", [("reverse", 1.0), ("forward", -1.0)])
def test_alternating_gda_is_bounded_and_conserves_its_invariant(order, sign):
    # Alternating GDA on xᵀAy is symplectic: with y updated first (order "reverse", the default)
    # Q = ‖x‖² + ‖y‖² + η xᵀAy is conserved exactly; with x first, Q = ‖x‖² + ‖y‖² − η xᵀAy.
    sigmas = (1.0, 0.6, 0.3)
    lr = 0.2
    A, U, V, x, y, closure = bilinear(sigmas, seed=1)

    def invariant():
        with torch.no_grad():
            return float(x @ x + y @ y + sign * lr * (x @ A @ y))

    opt = build("sgd", [[x], [y]], lr=lr, scheme="alternating", order=order)
    q0 = invariant()
    # |η xᵀAy| ≤ η σ_max (‖x‖² + ‖y‖²)/2, so ‖(x, y)‖² ≤ Q / (1 − η σ_max / 2)
    bound = math.sqrt(q0 / (1 - lr * max(sigmas) / 2))
    norms = []
    for _ in range(1000):
        opt.step(closure)
        norms.append(total_norm(x, y))
        assert invariant() == pytest.approx(q0, rel=1e-10)
    assert max(norms) <= bound * (1 + 1e-12)
    # no growth: the last stretch is no larger than the first, and far from 0 (it cycles)
    assert max(norms[-100:]) <= max(norms[:100]) * 1.01
    assert min(norms[-100:]) > 0.3 * norms[0]


def test_negative_momentum_converges_on_alternating_bilinear():
    # Gidel et al. 2019 ("Negative momentum for improved game dynamics"): alternating updates with
    # negative heavy-ball momentum converge on bilinear games; zero momentum cycles, positive diverges.
    finals = {}
    for beta in (-0.5, 0.0, 0.3):
        A, U, V, x, y, closure = bilinear((1.0, 0.8, 0.6), seed=0)
        n0 = total_norm(x, y)
        opt = build("momentum", [[x], [y]], lr=0.5, momentum=beta, scheme="alternating")
        for _ in range(600):
            opt.step(closure)
        finals[beta] = total_norm(x, y) / n0
    assert finals[-0.5] < 1e-3
    assert 0.5 < finals[0.0] < 2.0
    assert finals[0.3] > 1e3


# ---------------------------------------------------------------------------------------- rules
def test_nesterov_evaluates_the_gradient_at_the_look_ahead_point():
    a, lr, beta = 3.0, 0.1, 0.7
    theta = torch.tensor([2.0], dtype=DT, requires_grad=True)
    opt = build("nesterov", [[theta]], lr=lr, momentum=beta)

    def closure():
        return [0.5 * a * (theta**2).sum()]

    th, v = 2.0, 0.0
    for _ in range(20):
        opt.step(closure)
        v = beta * v - lr * a * (th + beta * v)  # gradient at θ + βv
        th = th + v
        assert float(theta.detach()) == pytest.approx(th, rel=1e-14, abs=1e-15)
    # and it is not heavy ball (gradient at θ)
    theta_hb = torch.tensor([2.0], dtype=DT, requires_grad=True)
    opt_hb = build("momentum", [[theta_hb]], lr=lr, momentum=beta)
    for _ in range(20):
        opt_hb.step(lambda: [0.5 * a * (theta_hb**2).sum()])
    assert abs(float(theta_hb.detach()) - th) > 1e-6


def _least_squares(seed=0):
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(8, 5, generator=g, dtype=DT)
    t = torch.randn(8, 3, generator=g, dtype=DT)
    w = torch.randn(5, 3, generator=g, dtype=DT)
    b = torch.randn(3, generator=g, dtype=DT)
    return M, t, w, b


def _loss(M, t, w, b):
    return ((M @ w + b - t) ** 2).mean() + (w.abs() ** 3).sum() * 0.01


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
def test_adam_matches_torch_adam_in_float64(betas):
    M, t, w0, b0 = _least_squares()
    w1, b1 = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    w2, b2 = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    ours = build("adam", [[w1, b1]], lr=1e-2, beta1=betas[0], beta2=betas[1], eps=1e-8)
    ref = torch.optim.Adam([w2, b2], lr=1e-2, betas=betas, eps=1e-8)
    for _ in range(60):
        ours.step(lambda: [_loss(M, t, w1, b1)])
        ref.zero_grad()
        _loss(M, t, w2, b2).backward()
        ref.step()
    torch.testing.assert_close(w1, w2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b1, b2, rtol=1e-12, atol=1e-12)


def test_adam_runs_with_negative_beta1_and_follows_the_formula():
    M, t, w0, b0 = _least_squares(1)
    w = w0.clone().requires_grad_()
    lr, b1, b2, eps = 1e-2, -0.5, 0.9, 1e-8
    opt = build("adam", [[w]], lr=lr, beta1=b1, beta2=b2, eps=eps)
    ref = w0.clone()
    m = torch.zeros_like(ref)
    v = torch.zeros_like(ref)
    for step in range(1, 31):
        opt.step(lambda: [_loss(M, t, w, b0)])
        r = ref.clone().requires_grad_()
        (g,) = torch.autograd.grad(_loss(M, t, r, b0), [r])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        ref = ref - lr * (m / (1 - b1**step)) / (torch.sqrt(v / (1 - b2**step)) + eps)
        torch.testing.assert_close(w.detach(), ref, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(w).all()


def test_rmsprop_matches_torch_rmsprop():
    M, t, w0, b0 = _least_squares(2)
    w1, c1 = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    w2, c2 = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    ours = build("rmsprop", [[w1, c1]], lr=1e-3, alpha=0.95, eps=1e-8)
    ref = torch.optim.RMSprop([w2, c2], lr=1e-3, alpha=0.95, eps=1e-8)
    for _ in range(60):
        ours.step(lambda: [_loss(M, t, w1, c1)])
        ref.zero_grad()
        _loss(M, t, w2, c2).backward()
        ref.step()
    torch.testing.assert_close(w1, w2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c1, c2, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------- hyper-parameters
def test_per_player_learning_rates():
    A, U, V, x, y, closure = bilinear((1.0, 0.5))
    x0, y0 = x.detach().clone(), y.detach().clone()
    opt = build("sgd", [[x], [y]], lr=[0.1, 0.01])
    assert opt.hp[0]["lr"] == 0.1 and opt.hp[1]["lr"] == 0.01
    opt.step(closure)
    torch.testing.assert_close(x.detach(), x0 - 0.1 * A @ y0, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(y.detach(), y0 + 0.01 * A.T @ x0, rtol=1e-14, atol=1e-14)


def test_configuration_errors():
    A, U, V, x, y, closure = bilinear((1.0,))
    with pytest.raises(ConfigError, match="lr"):
        build("adam", [[x], [y]], lr=[1e-3, 1e-3, 1e-3])
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        build("sgd", [[x], [y]], beta1=0.5)
    with pytest.raises(ConfigError, match="scheme"):
        build("sgd", [[x], [y]], scheme="sideways")
    with pytest.raises(ConfigError, match="optimizer"):
        build("no-such-method", [[x], [y]])


def test_max_grad_norm_clips_and_reports_the_norm_before_clipping():
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    q = torch.zeros(2, dtype=DT, requires_grad=True)
    c = torch.tensor([3.0, 4.0], dtype=DT)  # ‖∇‖ = 5

    def closure():
        return [(c * p).sum(), (c * q).sum()]

    opt = build("sgd", [[p], [q]], lr=1.0, max_grad_norm=[1.0, None])
    opt.step(closure)
    assert opt.last_grad_norms == pytest.approx([5.0, 5.0])
    torch.testing.assert_close(p.detach(), -c / 5, rtol=1e-10, atol=0)  # clipped to norm 1
    torch.testing.assert_close(q.detach(), -c, rtol=0, atol=0)  # not clipped


# ---------------------------------------------------------------------------------------- framework
def test_closure_randomness_is_identical_within_a_step():
    p = torch.ones(3, dtype=DT, requires_grad=True)
    q = torch.ones(3, dtype=DT, requires_grad=True)
    draws = []

    def closure():
        noise = torch.rand(3, dtype=DT)  # like a dropout mask
        draws.append(noise)
        return [(noise * p).sum() * (q**2).sum(), -(noise * p).sum() * (q**2).sum()]

    opt = build("sgd", [[p], [q]], lr=0.1, scheme="alternating")
    torch.manual_seed(0)
    opt.step(closure)
    assert len(draws) == 2 and opt.counts["closure"] == 2
    assert torch.equal(draws[0], draws[1])
    opt.step(closure)
    assert len(draws) == 4 and torch.equal(draws[2], draws[3])
    assert not torch.equal(draws[0], draws[2])  # the stream moves on between steps


def _bn_game(register):
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3).to(DT)
    x = torch.randn(16, 3, dtype=DT)
    shift = torch.zeros(3, dtype=DT, requires_grad=True)  # player 0 feeds the BN
    w = torch.randn(3, dtype=DT, requires_grad=True)  # player 1

    def closure():
        h = bn(x + shift)
        f = (h * w).sum(dim=1).pow(2).mean() + (shift**2).sum()
        return [f, -f + (w**2).sum()]

    buffers = list(bn.buffers()) if register else []
    opt = build("sgd", [[shift], [w]], lr=0.01, scheme="alternating", buffers=buffers)
    return bn, x, shift, opt, closure


def test_batchnorm_buffers_are_updated_once_per_alternating_step():
    bn, x, shift, opt, closure = _bn_game(register=True)
    reference = copy.deepcopy(bn)
    with torch.no_grad():
        reference(x + shift)  # one forward at the start point (player 0 moves last)
    opt.step(closure)
    assert opt.counts["closure"] == 2
    assert int(bn.num_batches_tracked) == 1
    torch.testing.assert_close(bn.running_mean, reference.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(bn.running_var, reference.running_var, rtol=0, atol=0)

    # without registration the two calls of the step both update the statistics
    bn2, _, _, opt2, closure2 = _bn_game(register=False)
    opt2.step(closure2)
    assert int(bn2.num_batches_tracked) == 2


@pytest.mark.parametrize(
    "name, hp",
    [
        ("sgd", {"lr": 0.05}),
        ("sgd", {"lr": 0.05, "scheme": "alternating"}),
        ("momentum", {"lr": 0.05, "momentum": -0.3, "scheme": "alternating"}),
        ("nesterov", {"lr": 0.05, "momentum": 0.8}),
        ("adam", {"lr": 0.01, "beta1": 0.5}),
        ("adam", {"lr": [0.01, 0.02], "scheme": "alternating", "order": "forward"}),
        ("rmsprop", {"lr": 0.01, "max_grad_norm": 0.5}),
    ],
)
def test_state_dict_round_trip_gives_identical_steps(name, hp):
    assert_round_trip(name, **hp)


def test_load_state_dict_refuses_another_method():
    A, U, V, x, y, closure = bilinear((1.0,))
    opt = build("adam", [[x], [y]])
    opt.step(closure)
    other = build("rmsprop", [[x], [y]])
    with pytest.raises(ConfigError):
        other.load_state_dict(opt.state_dict())
