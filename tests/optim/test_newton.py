"""The literal per-player Newton step (saddlepoint.optim.newton): damped Krylov solves, Levenberg–Marquardt,
Gauss–Newton products, and its divergence on a strict local minimax that is not a local Nash point (float64).

The ``local-minimax`` game, f = −3x² + 4xy − y², x minimises f and y minimises −f. Each player's own Newton step
(undamped, step size η):

    x-player: own Hessian ∂²f/∂x² = −6, gradient −6x + 4y   →  x ← x − η(−6x + 4y)/(−6) = (1 − η)x + (2η/3)y
    y-player: own Hessian ∂²(−f)/∂y² = 2, gradient −4x + 2y →  y ← y − η(−4x + 2y)/2   = 2ηx + (1 − η)y

Simultaneous: M = [[1 − η, 2η/3], [2η, 1 − η]], eigenvalues (1 − η) ± η·√(4/3) = (1 − η) ± 2η/√3, so the spectral
radius is 1 + η(2/√3 − 1) > 1 for 0 < η ≤ 1 (at η = 1: M = [[0, 2/3], [2, 0]], M² = (4/3)I, 2/√3 per step).
Alternating (either order; y first: x ← (1 − η)x + (2η/3)(2ηx + (1 − η)y)): trace T = 2 − 2η + 4η²/3, determinant
(1 − η)², spectral radius (T + √(T² − 4(1 − η)²))/2, e.g. 4/3 at η = 1 and (4 + √7)/6 at η = ½; the characteristic
polynomial at 1 is 1 − T + (1 − η)² = −η²/3 < 0, so a root exceeds 1 for every η > 0. The step diverges whatever
its size and order.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.games import DiracGAN, QuadraticGame, build_game
from saddlepoint.optim import build
from saddlepoint.optim.derivatives import flatten
from saddlepoint.optim.krylov import cr
from saddlepoint.optim.newton import DeclaredLosses, GaussNewtonProducts, damped_solve, levenberg_marquardt

from .toy_games import run as distances

DT = torch.float64
EXACT = {"damping": 0.0, "adapt_damping": False, "tol": 1e-14, "max_iter": 50}


def slope_rate(dist: list[float], start: int) -> float:
    """exp of the slope of log-distance from ``start`` to the end (the per-step rate)."""
    return math.exp((math.log(dist[-1]) - math.log(dist[start])) / (len(dist) - 1 - start))


def symmetric(eigenvalues: list[float], seed: int) -> torch.Tensor:
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=DT))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=DT)) @ q.T


# ----------------------------------------------------------------------------- solves
SPD = [0.5, 1.0, 2.0, 3.0, 5.0]
INDEFINITE = [-6.0, -1.0, 0.5, 2.0, 4.0]


@pytest.mark.parametrize("system,krylov,eigs", [
    ("direct", "cg", SPD), ("direct", "cr", SPD), ("direct", "cr", INDEFINITE),
    ("normal", "cg", INDEFINITE), ("normal", "cr", INDEFINITE),
])
@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_damped_solve_matches_the_dense_solution(system, krylov, eigs, damping):
    A = symmetric(eigs, 0)
    b = torch.randn(5, generator=torch.Generator().manual_seed(1), dtype=DT)
    eye = torch.eye(5, dtype=DT)
    info: dict = {}
    v, av = damped_solve(lambda u: A @ u, b, damping, system=system, krylov=krylov, tol=1e-13, max_iter=40, info=info)
    want = torch.linalg.solve(A + damping * eye, b) if system == "direct" else \
        torch.linalg.solve(A @ A + damping * eye, A @ b)
    assert torch.allclose(v, want, rtol=1e-9, atol=1e-11)
    assert torch.allclose(av, A @ v, rtol=1e-9, atol=1e-11)  # tracked along the iterates, no extra product
    assert info["converged"] and info["products"] == info["matvecs"] * (2 if system == "normal" else 1) + \
        (1 if system == "normal" else 0)


def test_cg_on_a_direct_system_stops_at_negative_curvature():
    """Truncated Newton (Nocedal & Wright, Alg. 7.1): CG does not follow a direction of non-positive curvature;
    when the first one is, the step is the right-hand side itself (the steepest-descent direction), not zero."""
    info: dict = {}
    v, av = damped_solve(lambda u: -6.0 * u, torch.ones(1, dtype=DT), 0.0, system="direct", krylov="cg", info=info)
    assert torch.equal(v, torch.ones(1, dtype=DT)) and torch.equal(av, torch.full((1,), -6.0, dtype=DT))
    assert not info["converged"] and info["negative_curvature"]


def test_conjugate_residuals_solve_indefinite_systems_only_when_told():
    A = symmetric(INDEFINITE, 3)
    b = torch.randn(5, generator=torch.Generator().manual_seed(4), dtype=DT)
    x, _ = cr(lambda u: A @ u, b, tol=1e-13, max_iter=30, definite=False)
    assert torch.allclose(A @ x, b, atol=1e-10)
    info: dict = {}
    x, _ = cr(lambda u: -u, torch.ones(3, dtype=DT), info=info)  # negative definite: the definite form stops
    assert not info["converged"] and torch.equal(x, torch.zeros(3, dtype=DT))


def test_levenberg_marquardt_rule():
    """Martens (2010, §4.1): ×3/2 below ρ = 1/4, ×2/3 above 3/4; 0 stays 0; bounded."""
    assert levenberg_marquardt(1.0, 0.1) == 1.5 and levenberg_marquardt(1.0, -math.inf) == 1.5
    assert levenberg_marquardt(1.0, float("nan")) == 1.5
    assert levenberg_marquardt(1.0, 0.5) == 1.0 and levenberg_marquardt(1.0, 0.9) == pytest.approx(2 / 3)
    assert levenberg_marquardt(0.0, -math.inf) == 0.0 and levenberg_marquardt(1.0, None) == 1.0
    assert levenberg_marquardt(1e-8, 1.0) == 1e-8 and levenberg_marquardt(1e8, 0.0) == 1e8


# ----------------------------------------------------------------------------- the literal step diverges
def _simultaneous_radius(eta: float) -> float:
    return max(abs(1 - eta + 2 * eta / math.sqrt(3)), abs(1 - eta - 2 * eta / math.sqrt(3)))


def _alternating_radius(eta: float) -> float:
    t = 2 - 2 * eta + 4 * eta**2 / 3
    return (t + math.sqrt(t * t - 4 * (1 - eta) ** 2)) / 2


@pytest.mark.parametrize("system,krylov", [("direct", "cr"), ("normal", "cg")])
@pytest.mark.parametrize("scheme,order", [("simultaneous", "reverse"), ("alternating", "reverse"),
                                          ("alternating", "forward")])
@pytest.mark.parametrize("eta", [1.0, 0.5, 0.2])
def test_per_player_newton_diverges_on_local_minimax(system, krylov, scheme, order, eta):
    """The growth rate over 60 iterations (slope of log-distance after 10) is the spectral radius derived in the
    module doc, within 1% (the undamped step, exact solves)."""
    game = build_game("local-minimax", {"x0": 1.0, "y0": 0.5})
    dist = distances(game, "newton", 60, lr=eta, system=system, krylov=krylov, scheme=scheme, order=order, **EXACT)
    want = _simultaneous_radius(eta) if scheme == "simultaneous" else _alternating_radius(eta)
    assert want > 1.0
    assert slope_rate(dist, 10) == pytest.approx(want, rel=1e-2)
    assert dist[-1] > 2 * dist[0]


def test_simultaneous_full_newton_squares_to_four_thirds():
    """η = 1: M² = (4/3)I, so every second iterate is the start scaled by exactly (4/3)^k."""
    game = build_game("local-minimax", {"x0": 0.3, "y0": -0.7})
    z0 = torch.cat(game.flat())
    opt = build("newton", game.players, lr=1.0, krylov="cr", **EXACT)
    for k in range(1, 6):
        opt.step(game.losses)
        opt.step(game.losses)
        assert torch.allclose(torch.cat(game.flat()), (4 / 3) ** k * z0, rtol=1e-12)


def test_per_player_newton_on_a_convex_concave_game_is_the_best_response_map():
    """f = ½xᵀPx + xᵀAy − ½yᵀQy, P, Q ≻ 0: each own Newton step is the player's best response to the other's current
    point, x' = −P⁻¹Ay, y' = Q⁻¹Aᵀx (simultaneous, η = 1), and finite-difference products agree."""
    game = QuadraticGame(seed=3, dim=3)
    x, y = (t.clone() for t in game.flat())
    build("newton", game.players, lr=1.0, **EXACT).step(game.losses)
    assert torch.allclose(game.flat()[0], -torch.linalg.solve(game.P, game.A @ y), atol=1e-10)
    assert torch.allclose(game.flat()[1], torch.linalg.solve(game.Q, game.A.T @ x), atol=1e-10)
    fd = QuadraticGame(seed=3, dim=3)
    build("newton", fd.players, lr=1.0, hvp="fd", **EXACT).step(fd.losses)
    assert torch.allclose(torch.cat(fd.flat()), torch.cat(game.flat()), atol=1e-6)


class Quartic:
    """One player, f(x) = x⁴/4 + x²/2."""

    def __init__(self, x0: float) -> None:
        self.x = nn.Parameter(torch.tensor([x0], dtype=DT))
        self.players = [[self.x]]

    def losses(self):
        return [(self.x**4 / 4 + self.x**2 / 2).sum()]


def test_reduction_ratio_and_damping_update():
    """x = 1: g = 2, H = 4; λ = 1: p = −2/5, model q = gp + ½Hp² = −0.48, actual f(0.6) − f(1) = −0.5376,
    ρ = 1.12 > 3/4 → λ ← 2/3."""
    game = Quartic(1.0)
    opt = build("newton", game.players, damping=1.0, tol=1e-14, max_iter=5)
    opt.step(game.losses)
    assert float(game.x.detach()) == pytest.approx(0.6, rel=1e-12)
    assert opt.last_solve[0]["rho"] == pytest.approx(0.5376 / 0.48, rel=1e-12)
    assert opt.state["damping"] == [pytest.approx(2 / 3)]


def test_damping_decays_where_the_quadratic_model_is_exact():
    game = QuadraticGame(seed=1, dim=2)
    opt = build("newton", game.players, damping=0.5, tol=1e-14, max_iter=20)
    for _ in range(4):
        opt.step(game.losses)
    assert opt.state["damping"] == [pytest.approx(0.5 * (2 / 3) ** 4)] * 2


def test_declared_validation():
    game = build_game("local-minimax", {})
    for bad in ({"system": "qr"}, {"krylov": "gmres"}, {"damping": -1.0}, {"curvature": "fisher"},
                {"scheme": "both"}, {"max_iter": 0}, {"curvature": "gauss-newton", "hvp": "fd"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build("newton", game.players, **bad)


# ----------------------------------------------------------------------------- Gauss–Newton
class DeclaredGAN:
    """A float64 MLP GAN whose closure declares D's logits (non-saturating losses)."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.G = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 2)).to(DT)
        self.D = nn.Sequential(nn.Linear(2, 5), nn.Softplus(), nn.Linear(5, 1)).to(DT)
        self.z, self.real = torch.randn(7, 2, dtype=DT), torch.randn(6, 2, dtype=DT) + 1.0
        self.players = [list(self.G.parameters()), list(self.D.parameters())]

    def logits(self, g_params=None, d_params=None):
        from torch.func import functional_call
        gp = dict(self.G.named_parameters()) if g_params is None else g_params
        dp = dict(self.D.named_parameters()) if d_params is None else d_params
        fake = functional_call(self.G, gp, (self.z,))
        return functional_call(self.D, dp, (self.real,)).squeeze(1), functional_call(self.D, dp, (fake,)).squeeze(1)

    def losses(self):
        d_real, d_fake = self.logits()
        loss_d = nn.functional.softplus(-d_real).mean() + nn.functional.softplus(d_fake).mean()
        loss_g = nn.functional.softplus(-d_fake).mean()
        return DeclaredLosses([loss_g, loss_d], outputs={0: [d_fake], 1: [d_real, d_fake]})


def _dense_gauss_newton(gan: DeclaredGAN, player: int) -> torch.Tensor:
    """Jᵀ diag(σ'(u)/N) J from the full Jacobian of the logits (σ' = σ(1 − σ): softplus'')."""
    module = gan.G if player == 0 else gan.D
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach() for p in module.parameters())

    def outputs(*flat):
        ps = dict(zip(names, flat, strict=True))
        d_real, d_fake = gan.logits(g_params=ps) if player == 0 else gan.logits(d_params=ps)
        return d_fake if player == 0 else torch.cat([d_real, d_fake])

    jac = torch.autograd.functional.jacobian(outputs, params)
    J = torch.cat([j.reshape(j.shape[0], -1) for j in jac], 1)
    with torch.no_grad():
        d_real, d_fake = gan.logits()
    u = d_fake if player == 0 else torch.cat([d_real, d_fake])
    n = torch.full_like(u, float(len(d_fake))) if player == 0 else \
        torch.cat([torch.full_like(d_real, float(len(d_real))), torch.full_like(d_fake, float(len(d_fake)))])
    w = torch.sigmoid(u) * torch.sigmoid(-u) / n
    return J.T @ (w[:, None] * J)


@pytest.mark.parametrize("player", [0, 1])
def test_gauss_newton_products_match_the_dense_matrix(player):
    gan = DeclaredGAN()
    losses = gan.losses()
    products = GaussNewtonProducts(losses[player], losses.outputs[player], gan.players[player])
    v = [torch.randn_like(p) for p in gan.players[player]]
    got = flatten(products(v))
    want = _dense_gauss_newton(gan, player) @ flatten(v)
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_gauss_newton_is_the_hessian_where_the_logits_are_linear_and_needs_a_declaration():
    """DiracGAN: the logit ψθ is linear in each player's parameter, so the Gauss–Newton matrix is the Hessian and one
    newton step is the same with either curvature."""
    steps = {}
    for curvature in ("hessian", "gauss-newton"):
        game = DiracGAN(theta0=0.7, psi0=-0.4)
        build("newton", game.players, curvature=curvature, lr=0.5, **EXACT).step(game.losses)
        steps[curvature] = torch.cat(game.flat())
    assert torch.allclose(steps["hessian"], steps["gauss-newton"], rtol=1e-12)
    game = build_game("local-minimax", {})
    with pytest.raises(ConfigError, match="declares none"):
        build("newton", game.players, curvature="gauss-newton").step(game.losses)


def test_gauss_newton_newton_step_solves_with_the_dense_matrix():
    gan = DeclaredGAN(seed=2)
    before = [flatten([p.detach().clone() for p in ps]) for ps in gan.players]
    losses = gan.losses()
    grads = [flatten(torch.autograd.grad(losses[i], gan.players[i], retain_graph=True)) for i in range(2)]
    dense = [_dense_gauss_newton(gan, i) for i in range(2)]
    build("newton", gan.players, curvature="gauss-newton", lr=1.0, damping=0.1, adapt_damping=False, tol=1e-14,
          max_iter=200).step(gan.losses)
    for i in range(2):
        eye = torch.eye(dense[i].shape[0], dtype=DT)
        want = before[i] - torch.linalg.solve(dense[i] + 0.1 * eye, grads[i])
        assert torch.allclose(flatten([p.detach() for p in gan.players[i]]), want, rtol=1e-8, atol=1e-10)


# ----------------------------------------------------------------------------- GAN training
def test_newton_trains_the_ring(tmp_path):
    import json

    import saddlepoint as sp

    cfg = {"data": {"name": "ring"}, "model": {"name": "mlp", "z_dim": 2, "width": 16, "depth": 2},
           "optim": {"name": "newton"}, "train": {"steps": 30, "batch_size": 32, "ema": 0.0},
           "eval": {"samples": 100}, "log": {"every": 10, "progress": "none", "report": False}}
    out = sp.train(cfg, out=tmp_path / "run")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 30 and summary["hvps"] > 0


def test_complete_newton_follower_moves_on_indefinite_curvature_with_direct_solves():
    """f = 3x² + y² + 4xy from (6, 5), system direct: the follower's (maximiser's) Hessian of −f is −2 < 0, so CG
    meets negative curvature at once. It used to return a zero step, freezing y while x ran away (found by the
    Newton-type reproduction, benchmarks/reproduce/ridge.py); the follower now steps along its gradient."""
    x = torch.tensor([6.0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([5.0], dtype=torch.float64, requires_grad=True)
    opt = build("complete-newton", [[x], [y]], system="direct", damping=0.0, adapt_damping=False)

    def closure():
        v = (3 * x * x + y * y + 4 * x * y).sum()
        return [v, -v]

    opt.step(closure)
    assert float(y.detach()) != 5.0
