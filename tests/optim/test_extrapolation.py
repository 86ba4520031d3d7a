"""Extrapolation methods (extragradient, past-extragradient, optimistic; saddlepoint.optim.extrapolation):
closed-form rates on bilinear games, gradient counts, state_dict round trips, configuration. Lookahead:
tests/optim/test_lookahead.py."""

from __future__ import annotations

import math

import pytest
import torch

from saddlepoint.errors import ConfigError
from saddlepoint.optim import build

from .toy_games import DT, bilinear, direction_norms, ogda_spectral_radius, round_trip, total_norm


# ---------------------------------------------------------------------------------------- extragradient
def test_extragradient_contracts_at_the_exact_rate():
    sigmas = (1.0, 0.6, 0.3)
    lr = 0.3
    A, U, V, x, y, closure = bilinear(sigmas)
    opt = build("extragradient", [[x], [y]], base="sgd", lr=lr)
    h2 = (lr * torch.tensor(sigmas, dtype=DT)) ** 2
    expected = torch.sqrt((1 - h2) ** 2 + h2)
    assert (expected < 1).all()
    before = direction_norms(U, V, x, y)
    for _ in range(40):
        opt.step(closure)
        after = direction_norms(U, V, x, y)
        torch.testing.assert_close(after / before, expected, rtol=1e-10, atol=0)
        before = after


def test_extragradient_per_player_lr_and_first_evaluation_norms():
    A, U, V, x, y, closure = bilinear((1.0, 0.5), seed=3)
    x0, y0 = x.detach().clone(), y.detach().clone()
    ex, ey = 0.2, 0.1
    opt = build("extragradient", [[x], [y]], base="sgd", lr=[ex, ey])
    opt.step(closure)
    xh, yh = x0 - ex * A @ y0, y0 + ey * A.T @ x0  # extrapolation
    torch.testing.assert_close(x.detach(), x0 - ex * A @ yh, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(y.detach(), y0 + ey * A.T @ xh, rtol=1e-13, atol=1e-13)
    # logged gradient norms are those at θ_t (where the returned losses are)
    assert opt.last_grad_norms == pytest.approx([float((A @ y0).norm()), float((A.T @ x0).norm())])


@pytest.mark.parametrize("scheme", ["simultaneous", "alternating"])
def test_extragradient_on_two_independent_samples(scheme):
    """``independent_batches``: the extrapolation on sample a, the update on sample b (Gidel et al. 2019, Alg. 2
    with independent ξ_t, ξ'_t): θ⁺ = θ − η F_b(θ − η F_a(θ)), F the game's field; one sample refuses a pair."""
    A, U, V, x, y, closure_a = bilinear((1.0, 0.5), seed=3)
    B = A + 0.3 * torch.eye(2, dtype=DT).flip(0)  # a second sample of the game's matrix

    def closure_b():
        f = x @ B @ y
        return [f, -f]

    x0, y0, lr = x.detach().clone(), y.detach().clone(), 0.2
    opt = build("extragradient", [[x], [y]], base="sgd", lr=lr, scheme=scheme, independent_batches=True)
    assert opt.wants_independent_batches
    opt.step((closure_a, closure_b))
    if scheme == "simultaneous":
        xh, yh = x0 - lr * A @ y0, y0 + lr * A.T @ x0
        x1, y1 = x0 - lr * B @ yh, y0 + lr * B.T @ xh
    else:  # y (the discriminator's place, reverse order) first, then x against the new y
        y1 = y0 + lr * B.T @ x0  # the field of y does not depend on y
        x1 = x0 - lr * B @ y1
    torch.testing.assert_close(x.detach(), x1, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(y.detach(), y1, rtol=1e-13, atol=1e-13)
    assert opt.counts["grad"] == 4
    with pytest.raises(TypeError, match="a closure"):
        build("extragradient", [[x], [y]], base="sgd").step((closure_a, closure_b))
    with pytest.raises(ConfigError, match="independent_batches"):
        build("extragradient", [[x], [y]], independent_batches="yes")


def test_alternating_schemes():
    # On xᵀAy a player's own gradient does not depend on its own parameters, so alternating
    # extragradient takes exactly the alternating-GDA path (at twice the gradient cost).
    lr = 0.2
    A, U, V, x1, y1, closure1 = bilinear((1.0, 0.6), seed=9)
    x2, y2 = x1.detach().clone().requires_grad_(), y1.detach().clone().requires_grad_()
    eg = build("extragradient", [[x1], [y1]], base="sgd", lr=lr, scheme="alternating")
    gda = build("sgd", [[x2], [y2]], lr=lr, scheme="alternating")
    for _ in range(20):
        eg.step(closure1)
        gda.step(lambda: [x2 @ A @ y2, -(x2 @ A @ y2)])
        torch.testing.assert_close(x1.detach(), x2.detach(), rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(y1.detach(), y2.detach(), rtol=1e-13, atol=1e-13)
    assert eg.counts["grad"] == 20 * 4 and eg.counts["closure"] == 20 * 4

    # alternating optimistic, order forward: x moves first, then y sees the new x
    A, U, V, x, y, closure = bilinear((1.0, 0.6), seed=10)
    opt = build("optimistic", [[x], [y]], base="sgd", lr=lr, scheme="alternating", order="forward")
    x0, y0 = x.detach().clone(), y.detach().clone()
    opt.step(closure)
    x1_, y1_ = x0 - 2 * lr * A @ y0, y0 + 2 * lr * A.T @ (x0 - 2 * lr * A @ y0)
    torch.testing.assert_close(x.detach(), x1_, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(y.detach(), y1_, rtol=1e-13, atol=1e-13)
    opt.step(closure)
    x2_ = x1_ - 2 * lr * A @ y1_ + lr * A @ y0
    y2_ = y1_ + 2 * lr * A.T @ x2_ - lr * A.T @ x1_
    torch.testing.assert_close(x.detach(), x2_, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(y.detach(), y2_, rtol=1e-13, atol=1e-13)
    assert opt.counts["grad"] == 4 and opt.counts["closure"] == 4


def test_extragradient_clips_both_gradients():
    p = torch.zeros(2, dtype=DT, requires_grad=True)
    c = torch.tensor([3.0, 4.0], dtype=DT)
    opt = build("extragradient", [[p]], base="sgd", lr=1.0, max_grad_norm=1.0)
    opt.step(lambda: [(c * p).sum()])
    assert opt.last_grad_norms == pytest.approx([5.0])
    torch.testing.assert_close(p.detach(), -c / 5, rtol=1e-12, atol=0)


def _adam_on_xy(name, lr, steps, seed=1, **hp):
    """Run on f = xy (1-D bilinear); return the initial distance and the largest of the last 100."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, generator=g, dtype=DT).requires_grad_()
    y = torch.randn(1, generator=g, dtype=DT).requires_grad_()
    n0 = total_norm(x, y)
    opt = build(name, [[x], [y]], lr=lr, beta1=0.5, beta2=0.9, **hp)

    def closure():
        return [(x * y).sum(), -(x * y).sum()]

    norms = []
    for _ in range(steps):
        opt.step(closure)
        norms.append(total_norm(x, y))
    return n0, max(norms[-100:])


def test_extra_adam_converges_on_bilinear():
    # Gidel et al. 2019 (Extra-Adam, β1 = 0.5): with a constant step the normalised Adam steps keep a
    # size ~lr, so the iterates settle on a small cycle around the equilibrium whose radius is
    # proportional to lr (≈ 4 lr here); simultaneous Adam settles on a cycle several times larger.
    n0, extra = _adam_on_xy("extragradient", 0.02, 600, base="adam")
    _, plain = _adam_on_xy("adam", 0.02, 600)
    assert extra < 0.15 * n0
    assert extra < 6 * 0.02
    assert extra < 0.5 * plain
    _, extra_half = _adam_on_xy("extragradient", 0.01, 1000, base="adam")
    assert extra_half == pytest.approx(extra / 2, rel=0.2)  # the neighbourhood shrinks with lr


def test_extra_adam_updates_the_moments_at_both_calls():
    A, U, V, x, y, closure = bilinear((1.0,))
    opt = build("extragradient", [[x], [y]], base="adam")
    opt.step(closure)
    opt.step(closure)
    assert opt.player_state(0)["base"]["t"] == 4  # two moment updates per step


# ---------------------------------------------------------------------------------------- optimistic / past
def test_optimistic_gda_contracts_at_its_spectral_radius():
    sigmas = (1.0, 0.7, 0.4)
    lr = 0.3
    A, U, V, x, y, closure = bilinear(sigmas, seed=2)
    opt = build("optimistic", [[x], [y]], base="sgd", lr=lr)
    for _ in range(60):  # let the faster root die out
        opt.step(closure)
    start = direction_norms(U, V, x, y)
    m = 200
    for _ in range(m):
        opt.step(closure)
    observed = (direction_norms(U, V, x, y) / start) ** (1 / m)
    for k, sigma in enumerate(sigmas):
        rho = ogda_spectral_radius(lr * sigma)
        assert rho < 1
        # compare the log-rates (much stricter than comparing rates that are all close to 1)
        assert math.log(float(observed[k])) == pytest.approx(math.log(rho), rel=0.01)


def test_optimistic_first_step_and_recursion():
    A, U, V, x, y, closure = bilinear((1.0, 0.5), seed=4)
    lr = 0.1
    opt = build("optimistic", [[x], [y]], base="sgd", lr=lr)
    xs, ys = [x.detach().clone()], [y.detach().clone()]
    for _ in range(5):
        opt.step(closure)
        xs.append(x.detach().clone())
        ys.append(y.detach().clone())
    # u_{-1} = 0: θ_1 = θ_0 − 2η g_0
    torch.testing.assert_close(xs[1], xs[0] - 2 * lr * A @ ys[0], rtol=1e-13, atol=1e-13)
    for t in range(1, 5):  # θ_{t+1} = θ_t − 2η g_t + η g_{t−1}
        gx, gx_prev = A @ ys[t], A @ ys[t - 1]
        gy, gy_prev = -A.T @ xs[t], -A.T @ xs[t - 1]
        torch.testing.assert_close(xs[t + 1], xs[t] - 2 * lr * gx + lr * gx_prev, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ys[t + 1], ys[t] - 2 * lr * gy + lr * gy_prev, rtol=1e-12, atol=1e-12)


def test_past_extragradient_converges_at_the_optimistic_rate():
    sigmas = (1.0, 0.7, 0.4)
    lr = 0.3
    A, U, V, x, y, closure = bilinear(sigmas, seed=5)
    n0 = total_norm(x, y)
    opt = build("past-extragradient", [[x], [y]], base="sgd", lr=lr)
    for _ in range(60):
        opt.step(closure)
    start = direction_norms(U, V, x, y)
    m = 400
    for _ in range(m):
        opt.step(closure)
    observed = (direction_norms(U, V, x, y) / start) ** (1 / m)
    for k, sigma in enumerate(sigmas):
        rho = ogda_spectral_radius(lr * sigma)
        assert math.log(float(observed[k])) == pytest.approx(math.log(rho), rel=0.01)
    assert total_norm(x, y) < 0.05 * n0


def test_past_extragradient_extrapolation_points_are_the_optimistic_iterates():
    # With base sgd, past-EG's extrapolation points θ_{t+½} are the OGDA iterates x_t (both started at
    # θ_0 with zero past), hence θ_t = x_t − T(g(x_{t−1})) = x_t + η g(x_{t−1}).
    lr = 0.2
    A, U, V, x1, y1, closure1 = bilinear((1.0, 0.6, 0.2), seed=6)
    x2, y2 = x1.detach().clone().requires_grad_(), y1.detach().clone().requires_grad_()
    past = build("past-extragradient", [[x1], [y1]], base="sgd", lr=lr)
    ogda = build("optimistic", [[x2], [y2]], base="sgd", lr=lr)
    for _ in range(30):
        x_prev, y_prev = x2.detach().clone(), y2.detach().clone()
        ogda.step(lambda: [x2 @ A @ y2, -(x2 @ A @ y2)])
        past.step(closure1)
        torch.testing.assert_close(x1.detach(), x2.detach() + lr * A @ y_prev, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(y1.detach(), y2.detach() - lr * A.T @ x_prev, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------- costs
@pytest.mark.parametrize(
    "name, grads, closures",
    [("extragradient", 2, 2), ("past-extragradient", 1, 1), ("optimistic", 1, 1)],
)
@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_gradient_counts_per_step(name, grads, closures, base):
    A, U, V, x, y, closure = bilinear((1.0, 0.5))
    opt = build(name, [[x], [y]], base=base)
    for step in range(1, 6):
        opt.step(closure)
        assert opt.counts["grad"] == 2 * grads * step  # two players
        assert opt.counts["closure"] == closures * step


def test_extragradient_same_randomness_in_both_calls():
    p = torch.ones(3, dtype=DT, requires_grad=True)
    q = torch.ones(3, dtype=DT, requires_grad=True)
    draws = []

    def closure():
        noise = torch.rand(3, dtype=DT)
        draws.append(noise)
        f = (noise * p).sum() * (q**2).sum()
        return [f, -f]

    opt = build("extragradient", [[p], [q]], base="sgd", lr=0.1)
    opt.step(closure)
    assert len(draws) == 2 and torch.equal(draws[0], draws[1])


# ---------------------------------------------------------------------------------------- state
@pytest.mark.parametrize(
    "name, hp",
    [
        ("extragradient", {"base": "sgd", "lr": 0.1}),
        ("extragradient", {"base": "adam", "lr": 0.01, "scheme": "alternating"}),
        ("extragradient", {"base": "adam", "lr": [0.01, 0.02], "beta1": 0.0}),
        ("extragradient", {"base": "momentum", "lr": 0.05, "momentum": -0.3}),
        ("extragradient", {"base": "rmsprop", "lr": 0.01, "max_grad_norm": 0.3}),
        ("past-extragradient", {"base": "sgd", "lr": 0.1}),
        ("past-extragradient", {"base": "adam", "lr": 0.01}),
        ("past-extragradient", {"base": "momentum", "lr": 0.05, "scheme": "alternating"}),
        ("optimistic", {"base": "sgd", "lr": 0.1}),
        ("optimistic", {"base": "adam", "lr": 0.01, "beta2": 0.9}),
        ("optimistic", {"base": "adam", "lr": 0.01, "scheme": "alternating", "order": "forward"}),
    ],
)
def test_state_dict_round_trip(name, hp):
    round_trip(name, 4, hp)  # for lookahead with k = 3: saved mid-cycle, the sync falls in the 3 steps




# ---------------------------------------------------------------------------------------- configuration
def test_configuration_errors():
    A, U, V, x, y, closure = bilinear((1.0,))
    players = [[x], [y]]
    with pytest.raises(ConfigError, match="base"):
        build("extragradient", players, base="lbfgs")
    with pytest.raises(ConfigError, match="beta1"):
        build("optimistic", players, base="sgd", beta1=0.5)
    with pytest.raises(ConfigError, match="lr"):
        build("past-extragradient", players, lr=[0.1, 0.1, 0.1])
    with pytest.raises(ConfigError, match="scheme"):
        build("extragradient", players, scheme="gauss-seidel")
    with pytest.raises(ConfigError, match="order"):
        build("optimistic", players, order="random")


def test_defaults_follow_the_base_rule():
    A, U, V, x, y, closure = bilinear((1.0,))
    assert build("extragradient", [[x], [y]]).hp[0] == {
        "lr": 2e-4,
        "max_grad_norm": None,
        "beta1": 0.5,
        "beta2": 0.999,
        "eps": 1e-8,
    }
    assert build("optimistic", [[x], [y]], base="sgd").hp[1] == {"lr": 1e-2, "max_grad_norm": None}
    assert build("past-extragradient", [[x], [y]]).shared == {
        "base": "adam",
        "scheme": "simultaneous",
        "order": "reverse",
    }
