"""Follow-the-Ridge, GDN and Complete Newton (saddlepoint.optim.ridge) against closed forms (float64).

Quadratic game, the papers' convention (x minimises f, y maximises it; losses f, −f):

    f = ½xᵀAx + xᵀBy + ½yᵀCy,   ∇_x f = Ax + By,   ∇_y f = Bᵀx + Cy,   C ≺ 0,   S = A − BC⁻¹Bᵀ ≻ 0

(0 is a strict local minimax; A may be indefinite, then 0 is no local Nash point). In ridge coordinates
u = y + C⁻¹Bᵀx (∇_y f = Cu) the leader's gradient is ∇_x f = Sx + Bu. The follower's own loss is g = −f, so its
Hessian blocks are G_yy = −C, G_yx = −Bᵀ and the ridge correction −G_yy⁻¹G_yxΔx = −C⁻¹BᵀΔx makes Δu = Δy + C⁻¹BᵀΔx
free of Δx:

* Follow-the-Ridge (base sgd): Δx = −η_x(Sx + Bu), Δy = η_y Cu − C⁻¹BᵀΔx ⇒ u' = (I + η_y C)u. The map is block
  triangular, [[I − η_x S, −η_x B], [0, I + η_y C]]: eigenvalues {1 − η_x eig S} ∪ {1 + η_y eig C} (their Thm. 2).
* GDN: Δy = −G_yy⁻¹(η_y ∇_y g + G_yxΔx) = −η_y u − C⁻¹BᵀΔx ⇒ u' = (1 − η_y)u: eigenvalues {1 − η_x eig S} ∪ {1 − η_y};
  with η_y = 1 the follower is on the ridge from the first step and x contracts at |1 − η_x S| exactly.
* Complete Newton: Δx = −η_x S⁻¹∇_x f = −η_x(x + S⁻¹Bu) ⇒ x' = (1 − η_x)x − η_x S⁻¹Bu, u' = (1 − η_y)u; with
  η = 1 the map is nilpotent of index 2: the equilibrium exactly after two iterations (one does not suffice:
  x₁ = −S⁻¹Bu₀).

Scalar games: ``local-minimax`` f = −3x² + 4xy − y² (A = −6, B = 4, C = −2, S = 2: FTR {1 − 2η_x, 1 − 2η_y});
``non-minimax`` f = 3x² + 4xy + y² (A = 6, B = 4, C = 2, S = −2: FTR {1 + 2η_x, 1 + 2η_y}, repelled; simultaneous
GDA, x ← x − η(6x + 4y), y ← y + η(4x + 2y), has the double eigenvalue 1 − 2η and converges for η < 1).
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.games import build_game
from saddlepoint.optim import build
from saddlepoint.optim.ridge import FollowRidge

from .toy_games import run as distances

DT = torch.float64
EXACT = {"damping": 0.0, "adapt_damping": False, "tol": 1e-14, "max_iter": 60}
RIDGE = ["follow-ridge", "gdn", "complete-newton"]


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spd(n: int, eigs: list[float], seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=_rng(seed), dtype=DT))
    return q @ torch.diag(torch.tensor(eigs, dtype=DT)) @ q.T


class Quadratic:
    """f = ½xᵀAx + xᵀBy + ½yᵀCy (leader x, losses f and −f); or, with ``follower = (F, E)``, the follower's own
    g = ½yᵀFy + yᵀEx (general sum)."""

    def __init__(self, A, B, C, z0, follower=None) -> None:
        self.A, self.B, self.C, self.follower = A, B, C, follower
        nx = A.shape[0]
        self.x = nn.Parameter(z0[:nx].clone())
        self.y = nn.Parameter(z0[nx:].clone())
        self.players = [[self.x], [self.y]]

    def losses(self):
        x, y = self.x, self.y
        f = 0.5 * x @ self.A @ x + x @ self.B @ y + 0.5 * y @ self.C @ y
        if self.follower is None:
            return [f, -f]
        F, E = self.follower
        return [f, 0.5 * y @ F @ y + y @ E @ x]

    def z(self) -> torch.Tensor:
        return torch.cat([self.x.detach(), self.y.detach()])

    def distance(self) -> float:
        return float(torch.linalg.vector_norm(self.z()))


def strict_local_minimax(nx: int = 3, ny: int = 2, seed: int = 0):
    """(A, B, C, S) with C ≺ 0 and S = A − BC⁻¹Bᵀ ≻ 0 chosen, A = S + BC⁻¹Bᵀ (indefinite here)."""
    S = _spd(nx, [0.5, 1.0, 2.0][:nx], seed)
    C = -_spd(ny, [1.0, 3.0][:ny], seed + 1)
    B = 2.0 * torch.randn(nx, ny, generator=_rng(seed + 2), dtype=DT)
    A = S + B @ torch.linalg.solve(C, B.T)
    return A, B, C, S


def iteration_matrix(A, B, C, name: str, **hp) -> torch.Tensor:
    """The (linear) map of one step, column by column from the basis vectors (a fresh optimizer each)."""
    n = A.shape[0] + C.shape[0]
    cols = []
    for k in range(n):
        game = Quadratic(A, B, C, torch.eye(n, dtype=DT)[k])
        build(name, game.players, **hp).step(game.losses)
        cols.append(game.z())
    return torch.stack(cols, 1)


def real_eigenvalues(M: torch.Tensor) -> torch.Tensor:
    ev = torch.linalg.eigvals(M)
    assert float(ev.imag.abs().max()) < 1e-6
    return torch.sort(ev.real).values


def slope_rate(dist: list[float], start: int) -> float:
    return math.exp((math.log(dist[-1]) - math.log(dist[start])) / (len(dist) - 1 - start))


# ----------------------------------------------------------------------------- Follow-the-Ridge
@pytest.mark.parametrize("mixed", ["product", "step"])
@pytest.mark.parametrize("system,krylov", [("normal", "cg"), ("direct", "cg"), ("direct", "cr")])
def test_follow_ridge_map_has_the_papers_eigenvalues(mixed, system, krylov):
    A, B, C, S = strict_local_minimax()
    ex, ey = 0.3, 0.2
    M = iteration_matrix(A, B, C, "follow-ridge", lr=[ex, ey], mixed=mixed, system=system, krylov=krylov, **EXACT)
    want = torch.sort(torch.cat([1 - ex * torch.linalg.eigvalsh(S), 1 + ey * torch.linalg.eigvalsh(C)])).values
    assert torch.allclose(real_eigenvalues(M), want, atol=1e-9)
    # block triangular in ridge coordinates (x, u = y + C⁻¹Bᵀx): the u-block does not see x
    nx = A.shape[0]
    P = torch.eye(5, dtype=DT)
    P[nx:, :nx] = torch.linalg.solve(C, B.T)
    R = P @ M @ torch.linalg.inv(P)
    assert float(R[nx:, :nx].abs().max()) < 1e-10


@pytest.mark.parametrize("mixed", ["product", "step"])
def test_follow_ridge_converges_to_local_minimax_at_the_predicted_rate(mixed):
    """FTR on local-minimax: eigenvalues 1 − 2η_x = 0.9 and 1 − 2η_y = 0.6; rate from 70 iterations within 1%."""
    game = build_game("local-minimax", {"x0": 1.0, "y0": 0.5})
    dist = distances(game, "follow-ridge", 80, lr=[0.05, 0.2], mixed=mixed, **EXACT)
    assert slope_rate(dist, 10) == pytest.approx(0.9, rel=1e-2)
    gda = distances(build_game("local-minimax", {"x0": 1.0, "y0": 0.5}), "sgd", 80, lr=0.05)
    assert gda[-1] > 100 * gda[0]  # simultaneous GDA diverges from it (1 + 2η double)


def test_follow_ridge_is_repelled_from_non_minimax_where_gda_converges():
    """FTR: rate max(1 + 2η_x, 1 + 2η_y) = 1.1 (slope over 60 iterations, within 1%). Simultaneous GDA follows
    z_t = Mᵗz₀, M = I + η[[−6, −4], [4, 2]] (double eigenvalue 1 − 2η = 0.8), to the origin."""
    game = build_game("non-minimax", {"x0": 0.3, "y0": -0.2})
    dist = distances(game, "follow-ridge", 80, lr=[0.05, 0.005], **EXACT)
    assert slope_rate(dist, 20) == pytest.approx(1.1, rel=1e-2)
    eta = 0.1
    gda = build_game("non-minimax", {"x0": 0.3, "y0": -0.2})
    opt = build("sgd", gda.players, lr=eta, scheme="simultaneous")
    M = torch.eye(2, dtype=DT) + eta * torch.tensor([[-6.0, -4.0], [4.0, 2.0]], dtype=DT)
    assert torch.allclose(torch.linalg.eigvals(M).real, torch.tensor([0.8, 0.8], dtype=DT), atol=1e-6)
    z = torch.tensor([0.3, -0.2], dtype=DT)
    for _ in range(150):
        opt.step(gda.losses)
        z = M @ z
        assert torch.allclose(torch.cat(gda.flat()), z, rtol=1e-10, atol=1e-14)
    assert gda.distance() < 1e-10


def _general_sum_game(z0):
    """A leader with S ≻ 0, a follower with its own g = ½yᵀFy + yᵀEx, F ≻ 0."""
    A, B = _spd(3, [0.5, 1.0, 1.5], 4), 0.5 * torch.randn(3, 2, generator=_rng(13), dtype=DT)
    F, E = _spd(2, [0.5, 2.0], 9), torch.randn(2, 3, generator=_rng(10), dtype=DT)
    return Quadratic(A, B, -torch.eye(2, dtype=DT), z0, follower=(F, E)), F, E


def test_general_sum_follower_gradient_ignores_the_leader():
    """g = ½yᵀFy + yᵀEx, D's own loss: the ridge correction −F⁻¹EΔx cancels the leader's effect on ∇_y g, so with the
    sgd base ∇_y g evolves as (I − η_y F)ᵗ∇_y g₀ whatever the leader does."""
    z0 = torch.randn(5, generator=_rng(11), dtype=DT)
    game, F, E = _general_sum_game(z0)
    eta_y = 0.2
    opt = build("follow-ridge", game.players, lr=[0.1, eta_y], **EXACT)
    gy = F @ z0[3:] + E @ z0[:3]
    for _ in range(20):
        opt.step(game.losses)
        gy = gy - eta_y * F @ gy
        assert torch.allclose(F @ game.y.detach() + E @ game.x.detach(), gy, atol=1e-12)
    assert float(torch.linalg.vector_norm(game.x.detach() - z0[:3])) > 1e-2  # the leader did move


@pytest.mark.parametrize("base", ["rmsprop", "adam"])
@pytest.mark.parametrize("mixed", ["product", "step"])
def test_preconditioned_base_the_correction_follows_the_actual_leader_step(base, mixed):
    """Δy = T_y(∇_y g) − F⁻¹EΔx with Δx the leader's preconditioned step (the paper's GAN runs)."""
    from saddlepoint.optim.rules import build_rule

    z0 = torch.randn(5, generator=_rng(14), dtype=DT)
    game, F, E = _general_sum_game(z0)
    opt = build("follow-ridge", game.players, base=base, lr=[0.05, 0.02], mixed=mixed, **EXACT)
    for _ in range(3):
        x0, y0 = game.x.detach().clone(), game.y.detach().clone()
        rule_state = {k: [t.clone() for t in v] if isinstance(v, list) else v
                      for k, v in opt.player_state(1).get("base", {}).items()}
        opt.step(game.losses)
        dx = game.x.detach() - x0
        gy = F @ y0 + E @ x0
        base_step = build_rule(base).update([gy], [game.y], rule_state, opt.hp[1])[0]
        want = y0 + base_step - torch.linalg.solve(F, E @ dx)
        assert torch.allclose(game.y.detach(), want, rtol=1e-10, atol=1e-12)


def test_adaptive_damping_follows_the_papers_rule():
    """On a quadratic the linear model is exact (ρ = 1 > 0.95): λ ← 0.9λ every step, never above λ₀. A measured
    residual larger than having no move (t < 0) drops the move and doubles λ (capped at λ₀)."""
    A, B, C, _ = strict_local_minimax(seed=1)
    game = Quadratic(A, B, C, torch.randn(5, generator=_rng(3), dtype=DT))
    opt = build("follow-ridge", game.players, lr=0.1, damping=0.5, tol=1e-14, max_iter=40)
    for k in range(1, 4):
        opt.step(game.losses)
        assert opt.state["damping"] == pytest.approx(0.5 * 0.9**k)
        assert opt.last_solve["follower"]["accepted"]
        assert opt.last_solve["follower"]["ratio"] == pytest.approx(1.0, abs=1e-6)
    one = torch.ones(3, dtype=DT)  # the residual of no move: ‖r₀‖² = 3
    cases = [(0.5, 2.0, 0.5, False, 0.5),     # t = (3 − 12)/3 < 0: dropped, λ doubled, capped at λ₀ = 0.5
             (0.1, 0.7, 0.25, True, 0.25),    # q = 0.99, t = 0.51, ρ ≈ 0.52 ∈ [½, 0.95]: λ unchanged
             (0.1, 0.8, 0.25, True, 0.275),   # t = 0.36, ρ ≈ 0.36 < ½: λ ×1.1
             (0.1, 0.1, 0.25, True, 0.225)]   # ρ = 1 > 0.95: λ ×0.9
    for model, measured, lam, keep, new in cases:
        opt.state["damping"] = lam
        assert opt.adapt(one, model * one, measured * one, {}) is keep
        assert opt.state["damping"] == pytest.approx(new)


def test_follower_only_steps():
    """n_critic-style steps (players=[1]): no leader move, so FTR's follower takes its base step alone and GDN's
    lands on the ridge of the current x (η_y = 1, exact solve)."""
    A, B, C, _ = strict_local_minimax(seed=2)
    z0 = torch.randn(5, generator=_rng(5), dtype=DT)
    game = Quadratic(A, B, C, z0)
    build("follow-ridge", game.players, lr=[0.1, 0.2], **EXACT).step(game.losses, players=[1])
    assert torch.equal(game.x.detach(), z0[:3])
    assert torch.allclose(game.y.detach(), z0[3:] + 0.2 * (B.T @ z0[:3] + C @ z0[3:]), atol=1e-12)
    game = Quadratic(A, B, C, z0)
    build("gdn", game.players, **EXACT).step(game.losses, players=[1])
    assert torch.allclose(game.y.detach(), -torch.linalg.solve(C, B.T @ z0[:3]), atol=1e-10)


# ----------------------------------------------------------------------------- GDN
@pytest.mark.parametrize("eta_y", [1.0, 0.5])
def test_gdn_map_eigenvalues(eta_y):
    A, B, C, S = strict_local_minimax(seed=3)
    ex = 0.3
    M = iteration_matrix(A, B, C, "gdn", lr=[ex, eta_y], **EXACT)
    want = torch.sort(torch.cat([1 - ex * torch.linalg.eigvalsh(S), torch.full((2,), 1 - eta_y, dtype=DT)])).values
    assert torch.allclose(real_eigenvalues(M), want, atol=1e-9)


@pytest.mark.parametrize("mixed", ["product", "step"])
def test_gdn_leader_contracts_at_one_minus_eta_s(mixed):
    """local-minimax, η_x = 0.05: |1 − η_x S| = 0.9 per step (slope over 60 iterations), the follower on the ridge
    y = 2x from the first step on."""
    game = build_game("local-minimax", {"x0": 1.0, "y0": -0.5})
    opt = build("gdn", game.players, lr=[0.05, 1.0], mixed=mixed, **EXACT)
    xs = [abs(float(game.x.detach()))]
    for _ in range(60):
        opt.step(game.losses)
        xs.append(abs(float(game.x.detach())))
        assert float(game.y.detach()) == pytest.approx(2 * float(game.x.detach()), rel=1e-10, abs=1e-300)
    assert slope_rate(xs, 1) == pytest.approx(0.9, rel=1e-2)
    S = torch.tensor(2.0)
    assert slope_rate(xs, 1) == pytest.approx(abs(1 - 0.05 * float(S)), rel=1e-9)


# ----------------------------------------------------------------------------- Complete Newton
@pytest.mark.parametrize("system,mixed", [("direct", "product"), ("normal", "product"), ("direct", "step")])
def test_complete_newton_solves_a_quadratic_game_in_two_iterations(system, mixed):
    A, B, C, _ = strict_local_minimax(seed=5)
    game = Quadratic(A, B, C, torch.randn(5, generator=_rng(6), dtype=DT))
    dist = distances(game, "complete-newton", 2, system=system, mixed=mixed, **EXACT)
    assert dist[1] > 1e-3 * dist[0] and dist[2] <= 1e-12


def test_newton_type_methods_converge_fast_on_sin_minimax():
    """f = (x² + 1)(2 + sin y), local minimax (0, π/2): Complete Newton converges quadratically (≤ 1e-10 in 6
    steps from (0.5, 1)), GDN's leader linearly at ≈ |1 − η_x·6|, Follow-the-Ridge too."""
    dist = distances(build_game("sin-minimax", {}), "complete-newton", 6, **EXACT)
    assert dist[-1] < 1e-10
    assert distances(build_game("sin-minimax", {}), "gdn", 40, lr=[0.1, 1.0], **EXACT)[-1] < 1e-8
    assert distances(build_game("sin-minimax", {}), "follow-ridge", 200, lr=0.1, **EXACT)[-1] < 1e-8


# ----------------------------------------------------------------------------- shared
@pytest.mark.parametrize("name", RIDGE)
def test_finite_difference_products_agree_with_exact_ones(name):
    A, B, C, _ = strict_local_minimax(seed=7)
    z0 = torch.randn(5, generator=_rng(8), dtype=DT)
    out = {}
    for hvp in ("exact", "fd"):
        game = Quadratic(A, B, C, z0)
        build(name, game.players, lr=[0.1, 0.5], hvp=hvp, **EXACT).step(game.losses)
        out[hvp] = game.z()
    assert torch.allclose(out["fd"], out["exact"], rtol=1e-6, atol=1e-7)


def test_two_players_and_known_options():
    params = [[nn.Parameter(torch.zeros(1))] for _ in range(3)]
    with pytest.raises(ConfigError, match="two-player"):
        build("gdn", params)
    two = params[:2]
    with pytest.raises(ConfigError, match="optim.mixed"):
        build("follow-ridge", two, mixed="secant")
    with pytest.raises(ConfigError, match="base"):
        build("complete-newton", two, base="adam")
    assert build("gdn", two).hp[1]["lr"] == 1.0 and build("gdn", two).hp[0]["lr"] == 1e-2
    assert build("follow-ridge", two, base="rmsprop").hp[0]["lr"] == 5e-5
    assert "alpha" in build("follow-ridge", two, base="rmsprop").hp[0]
    assert FollowRidge.defaults["base"] == "sgd"


@pytest.mark.parametrize("name", RIDGE)
def test_trains_the_ring(name, tmp_path):
    import saddlepoint as sp

    cfg = {"data": {"name": "ring"}, "model": {"name": "mlp", "z_dim": 2, "width": 16, "depth": 2},
           "optim": {"name": name}, "train": {"steps": 30, "batch_size": 32, "ema": 0.0},
           "eval": {"samples": 100}, "log": {"every": 10, "progress": "none", "report": False}}
    out = sp.train(cfg, out=tmp_path / "run")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 30 and summary["hvps"] > 0


# ----------------------------------------------------------------------------- in a GAN
def _gan(seed: int = 0, batchnorm: bool = False):
    torch.manual_seed(seed)
    layers = [nn.Linear(2, 6), *([nn.BatchNorm1d(6)] if batchnorm else []), nn.Tanh(), nn.Linear(6, 2)]
    G = nn.Sequential(*layers).to(DT)
    D = nn.Sequential(nn.Linear(2, 6), nn.Softplus(), nn.Linear(6, 1)).to(DT)
    real, z = torch.randn(16, 2, dtype=DT) + 1.0, torch.randn(16, 2, dtype=DT)
    return G, D, real, z


def _params(*modules):
    return torch.cat([p.detach().reshape(-1) for m in modules for p in m.parameters()])


@pytest.mark.parametrize("name", ["follow-ridge", "gdn"])
def test_forward_mode_mixed_product_through_the_generators_samples(name):
    """With ``forward_mode`` the trainer's closure declares G's samples and G_yx·Δx is taken by a forward pass of
    the tangent through G: the same step as by double backpropagation (float64)."""
    from saddlepoint.games.gan import GANClosure
    from saddlepoint.losses import LOSSES

    out = {}
    for forward in (False, True):
        G, D, real, z = _gan()
        opt = build(name, [list(G.parameters()), list(D.parameters())], lr=[0.05, 0.5], forward_mode=forward)
        assert opt.wants_pushforward is forward
        for _ in range(2):
            opt.step(GANClosure(G, D, LOSSES.get("minimax"), [], real, z, {}, pushforward=opt.wants_pushforward))
        out[forward] = _params(G, D)
    assert torch.allclose(out[True], out[False], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,hp", [("follow-ridge", {"mixed": "step"}), ("follow-ridge", {}),
                                     ("complete-newton", {"mixed": "step"}), ("gdn", {"hvp": "fd"})])
def test_batchnorm_statistics_are_those_of_the_first_evaluation(name, hp):
    """The extra evaluations (G's step for ``mixed: step``, the damping check, finite differences) leave G's running
    statistics as one evaluation at the step's starting point does."""
    G, D, real, z = _gan(batchnorm=True)
    ref = copy.deepcopy(G)
    ref(z)  # one training-mode evaluation
    opt = build(name, [list(G.parameters()), list(D.parameters())], buffers=list(G.buffers()), **hp)

    def closure():
        d_fake, d_real = D(G(z)), D(real)
        loss_d = nn.functional.softplus(-d_real).mean() + nn.functional.softplus(d_fake).mean()
        return [-nn.functional.softplus(d_fake).mean(), loss_d]

    opt.step(closure)
    for a, b in zip(G.buffers(), ref.buffers(), strict=True):
        assert torch.equal(a, b)
