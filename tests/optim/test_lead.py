"""LEAD (saddlepoint.optim.lead) on f = xy (x minimises, y maximises), float64.

With η the step, β the momentum and α the coupling weight, LEAD is linear on the state
s_k = (x_k, y_k, x_{k−1}, y_{k−1}): x_{k+1} = x_k + β(x_k − x_{k−1}) − η y_k − α(y_k − y_{k−1}),
y_{k+1} = y_k + β(y_k − y_{k−1}) + η x_k + α(x_k − x_{k−1}), so ‖s_k‖ shrinks at the spectral radius ρ of that
4 × 4 matrix (α = 0: heavy-ball momentum, whose ρ > 1 for β > 0: it spirals out).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saddlepoint.optim import build

DT = torch.float64
ETA, BETA, ALPHA = 0.1, 0.5, 0.5


def radius(eta: float, beta: float, alpha: float) -> float:
    m = np.array([[1 + beta, -eta - alpha, -beta, alpha],
                  [eta + alpha, 1 + beta, -alpha, -beta],
                  [1, 0, 0, 0], [0, 1, 0, 0]])
    return float(max(abs(np.linalg.eigvals(m))))


def run(name: str, steps: int, **hp) -> list[float]:
    x = torch.tensor([1.0], dtype=DT, requires_grad=True)
    y = torch.tensor([0.5], dtype=DT, requires_grad=True)
    opt = build(name, [[x], [y]], lr=ETA, momentum=BETA, **hp)
    dist = []
    for _ in range(steps):
        opt.step(lambda: [(x * y).sum(), -(x * y).sum()])
        dist.append(float(torch.cat([x, y]).detach().norm()))
    return dist


def rate(dist: list[float], start: int = 100) -> float:
    """exp of the slope of log-distance over the iterations after ``start`` (least squares)."""
    t = np.arange(start, len(dist))
    return float(np.exp(np.polyfit(t, np.log(dist[start:]), 1)[0]))


def test_lead_converges_where_heavy_ball_diverges():
    rho_lead, rho_momentum = radius(ETA, BETA, ALPHA), radius(ETA, BETA, 0.0)
    assert rho_lead < 1 < rho_momentum
    lead = run("lead", 300, coupling_alpha=ALPHA)
    momentum = run("momentum", 300, scheme="simultaneous")
    assert lead[-1] < 1e-12 and momentum[-1] > 10
    assert rate(lead, 50) == pytest.approx(rho_lead, rel=0.01)
    assert rate(momentum) == pytest.approx(rho_momentum, rel=0.01)


@pytest.mark.parametrize("hp", [{"coupling": "difference"}, {"hvp": "fd"}, {"coupling": "difference", "grad": "zo"}])
def test_difference_and_finite_difference_couplings_match_exact_on_bilinear_games(hp):
    """On f = xy the own curvature vanishes, so the gradient difference across iterations is the coupling term
    exactly; central differences are exact on quadratics (zeroth order: coordinate-wise, d ≤ q)."""
    exact = run("lead", 60, coupling_alpha=ALPHA)
    other = run("lead", 60, coupling_alpha=ALPHA, **hp)
    assert np.allclose(exact, other, rtol=1e-7, atol=1e-12)


def test_needs_and_costs():
    x = torch.tensor([1.0], dtype=DT, requires_grad=True)
    y = torch.tensor([0.5], dtype=DT, requires_grad=True)
    exact = build("lead", [[x], [y]])
    assert exact.requires_double_backward
    assert not build("lead", [[x], [y]], coupling="difference").requires_double_backward
    for _ in range(2):
        exact.step(lambda: [(x * y).sum(), -(x * y).sum()])
    assert exact.counts["hvp"] == 2  # step 1 has no move yet; step 2: one mixed product per player


def test_adaptive_base_receives_gradient_plus_alpha_coupling():
    """With ``base: adam`` the coupling enters unscaled by 1/η, as in the authors' GAN code (Adam fed g + α·c,
    α 0.6): on f = xy, c_x = Δy and c_y = −Δx, so a hand-written Adam on g + α c must give the same iterates."""
    eta, alpha, b1, b2, eps = 1e-2, 0.6, 0.5, 0.9, 1e-8
    x = torch.tensor([1.0], dtype=DT, requires_grad=True)
    y = torch.tensor([0.5], dtype=DT, requires_grad=True)
    opt = build("lead", [[x], [y]], base="adam", lr=eta, coupling_alpha=alpha, beta1=b1, beta2=b2, eps=eps)
    s = np.array([1.0, 0.5])  # (x, y)
    prev, m, v = None, np.zeros(2), np.zeros(2)
    for t in range(1, 41):
        opt.step(lambda: [(x * y).sum(), -(x * y).sum()])
        g = np.array([s[1], -s[0]])  # ∇_x(xy), ∇_y(−xy)
        if prev is not None:
            move = s - prev
            g = g + alpha * np.array([move[1], -move[0]])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        prev, s = s, s - eta / (1 - b1**t) * m / (np.sqrt(v / (1 - b2**t)) + eps)
        assert np.allclose([x.item(), y.item()], s, rtol=1e-12, atol=1e-14)
