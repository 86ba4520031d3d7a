"""Flat vectors, exact and finite-difference second-derivative products, CG and GMRES, against dense
linear algebra in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from saddlepoint.optim.linalg import GameDerivatives, cg, cr, flatten, gmres, unflatten, warm_scale

DT = torch.float64


def _mlp(sizes: list[int], act: type[nn.Module], bn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if bn:
                layers.append(nn.BatchNorm1d(b))
            layers.append(act())
    return nn.Sequential(*layers).to(DT)


class TinyGAN:
    """G: 2→5→3, D: 3→6→1 (tanh or softplus); players [G, D]; losses (ns G loss, D loss)."""

    def __init__(self, act: type[nn.Module] = nn.Tanh, bn_g: bool = False, bn_d: bool = False) -> None:
        torch.manual_seed(0)
        self.G = _mlp([2, 5, 3], act, bn_g)
        self.D = _mlp([3, 6, 1], act, bn_d)
        self.z = torch.randn(8, 2, dtype=DT)
        self.real = torch.randn(8, 3, dtype=DT)
        self.players = [list(self.G.parameters()), list(self.D.parameters())]
        self.names = [[n for n, _ in self.G.named_parameters()], [n for n, _ in self.D.named_parameters()]]

    def losses_with(self, g_params: dict, d_params: dict) -> list[Tensor]:
        fake = functional_call(self.G, g_params, (self.z,))
        d_fake = functional_call(self.D, d_params, (fake,)).squeeze(1)
        d_real = functional_call(self.D, d_params, (self.real,)).squeeze(1)
        loss_g = F.softplus(-d_fake).mean()
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return [loss_g, loss_d]

    def losses(self) -> list[Tensor]:
        return self.losses_with(dict(self.G.named_parameters()), dict(self.D.named_parameters()))

    def flat_loss(self, k: int):
        shapes = [[p.shape for p in params] for params in self.players]
        ng = sum(p.numel() for p in self.players[0])

        def fn(theta: Tensor) -> Tensor:
            g = unflatten(theta[:ng], [torch.empty(s) for s in shapes[0]])
            d = unflatten(theta[ng:], [torch.empty(s) for s in shapes[1]])
            return self.losses_with(dict(zip(self.names[0], g, strict=True)), dict(zip(self.names[1], d, strict=True)))[
                k
            ]

        return fn

    def dense_hessians(self) -> list[Tensor]:
        theta = flatten([p.detach() for ps in self.players for p in ps]).clone()
        return [torch.autograd.functional.hessian(self.flat_loss(k), theta) for k in range(2)]


def _blocks(game: TinyGAN) -> list[slice]:
    ng = sum(p.numel() for p in game.players[0])
    nd = sum(p.numel() for p in game.players[1])
    return [slice(0, ng), slice(ng, ng + nd)]


def _rand_like(params: list[Tensor], gen: torch.Generator) -> list[Tensor]:
    return [torch.randn(p.shape, generator=gen, dtype=DT) for p in params]


@pytest.mark.parametrize("bn", [False, True])
def test_exact_products_equal_dense_hessian(bn: bool) -> None:
    game = TinyGAN(nn.Tanh, bn_g=bn, bn_d=bn)
    for m in (game.G, game.D):
        m.train()
    hess = game.dense_hessians()
    blocks = _blocks(game)
    counts = {"grad": 0, "hvp": 0, "closure": 0}
    d = GameDerivatives(game.players, game.losses(), counts=counts)
    gen = torch.Generator().manual_seed(1)
    n_products = 0
    for k in range(2):
        for a in range(2):
            for b in range(2):
                v = _rand_like(game.players[b], gen)
                got = flatten(d.mixed(k, a, b, v))
                want = hess[k][blocks[a], blocks[b]] @ flatten(v)
                n_products += 1
                assert torch.allclose(got, want, rtol=0, atol=1e-10 * max(1.0, float(want.abs().max())))
    # the graph of each loss's gradient is built once and reused by every later product
    assert counts["hvp"] == n_products
    assert counts["grad"] == 4  # (k, b) pairs, each one backward with create_graph

    # whole-field products: J[i, j] = ∂²f_i/∂θ_i∂θ_j
    J = torch.cat([torch.cat([hess[i][blocks[i], blocks[j]] for j in range(2)], 1) for i in range(2)], 0)
    v = [_rand_like(game.players[i], gen) for i in range(2)]
    fv = flatten([t for vi in v for t in vi])
    jt, jv = d.field_vjp_jvp(v)
    assert torch.allclose(flatten([t for x in jt for t in x]), J.T @ fv, atol=1e-10)
    assert torch.allclose(flatten([t for x in jv for t in x]), J @ fv, atol=1e-10)
    assert torch.allclose(flatten([t for x in d.field_vjp(v) for t in x]), J.T @ fv, atol=1e-10)
    # SGA's antisymmetric part, one product per player
    before = counts["hvp"]
    at = d.field_antisymmetric(v)
    assert counts["hvp"] - before == 2
    assert torch.allclose(flatten([t for x in at for t in x]), 0.5 * (J.T - J) @ fv, atol=1e-10)


def test_fd_products_agree_with_exact_on_smooth_network() -> None:
    game = TinyGAN(nn.Softplus)
    counts = {"grad": 0, "hvp": 0, "closure": 0}

    def evaluate() -> list[Tensor]:
        counts["closure"] += 1
        return game.losses()

    exact = GameDerivatives(game.players, game.losses())
    gen = torch.Generator().manual_seed(2)
    cases = [(0, 0, 1), (1, 1, 0), (1, 1, 1), (0, 0, 0)]
    vs = [_rand_like(game.players[b], gen) for _, _, b in cases]
    field_v = [_rand_like(game.players[i], gen) for i in range(2)]
    # exact first: finite differences move the parameters (and restore them), which invalidates
    # graphs built before
    wants = [flatten(exact.mixed(k, a, b, v)) for (k, a, b), v in zip(cases, vs, strict=True)]
    field_want = exact.field_vjp_jvp(field_v)

    before = [p.detach().clone() for ps in game.players for p in ps]
    fd = GameDerivatives(game.players, game.losses(), evaluate=evaluate, mode="fd", counts=counts)
    for (k, a, b), v, want in zip(cases, vs, wants, strict=True):
        got = flatten(fd.mixed(k, a, b, v))
        rel = float(torch.linalg.vector_norm(got - want) / torch.linalg.vector_norm(want))
        assert rel < 1e-4, (k, a, b, rel)
    assert counts["hvp"] == 4 and counts["closure"] == 8
    # parameters are restored exactly after the perturbations
    after = [p.detach() for ps in game.players for p in ps]
    assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True))
    for got, want in zip(fd.field_vjp_jvp(field_v), field_want, strict=True):
        g, w = flatten([t for x in got for t in x]), flatten([t for x in want for t in x])
        assert float(torch.linalg.vector_norm(g - w) / torch.linalg.vector_norm(w)) < 1e-4
    before = dict(counts)
    g = flatten([t for x in fd.field_antisymmetric(field_v) for t in x])
    w = 0.5 * (flatten([t for x in field_want[0] for t in x]) - flatten([t for x in field_want[1] for t in x]))
    assert float(torch.linalg.vector_norm(g - w) / torch.linalg.vector_norm(w)) < 1e-4
    assert counts["hvp"] - before["hvp"] == 2 and counts["closure"] - before["closure"] == 4
    # a gradient requested after a perturbation is taken from a fresh evaluation at the same point
    fresh = fd.grad(0, 1)
    ref = torch.autograd.grad(game.losses()[0], game.players[1])
    assert all(torch.allclose(x, y, atol=1e-14) for x, y in zip(fresh, ref, strict=True))


def _spd(n: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(n, n, generator=g, dtype=DT)
    return B @ B.T / n + 0.1 * torch.eye(n, dtype=DT)


def test_cg_solves_spd_to_tolerance_and_counts_matvecs() -> None:
    A = _spd(40, 0)
    b = torch.randn(40, generator=torch.Generator().manual_seed(1), dtype=DT)
    calls = []

    def mv(v: Tensor) -> Tensor:
        calls.append(1)
        return A @ v

    info: dict = {}
    x, it = cg(mv, b, tol=1e-10, max_iter=500, info=info)
    assert info["converged"] and it == len(calls)
    assert float(torch.linalg.vector_norm(A @ x - b)) <= 1e-10 * float(torch.linalg.vector_norm(b)) * 1.01
    assert torch.allclose(x, torch.linalg.solve(A, b), atol=1e-8)
    # atol on the residual norm
    x2, _ = cg(lambda v: A @ v, b, tol=0.0, atol=1e-3)
    assert float(torch.linalg.vector_norm(A @ x2 - b)) <= 1e-3
    # lists of tensors: same solution
    like = [torch.zeros(10, 2, dtype=DT), torch.zeros(20, dtype=DT)]
    xl, _ = cg(lambda vs: unflatten(A @ flatten(vs), like), unflatten(b, like), tol=1e-12)
    assert isinstance(xl, list) and torch.allclose(flatten(xl), torch.linalg.solve(A, b), atol=1e-8)


def test_cg_warm_start_reduces_iterations() -> None:
    A = _spd(60, 3)
    gen = torch.Generator().manual_seed(4)
    b = torch.randn(60, generator=gen, dtype=DT)
    x, cold = cg(lambda v: A @ v, b, tol=1e-8, max_iter=1000)
    b2 = b + 1e-3 * torch.randn(60, generator=gen, dtype=DT)
    _, cold2 = cg(lambda v: A @ v, b2, tol=1e-8, max_iter=1000)
    x2, warm2 = cg(lambda v: A @ v, b2, x, tol=1e-8, max_iter=1000)
    assert warm2 < cold2
    assert float(torch.linalg.vector_norm(A @ x2 - b2)) <= 1e-8 * float(torch.linalg.vector_norm(b2)) * 1.01
    assert cold > 0


def test_cg_given_initial_residual_and_side_product() -> None:
    """r0 replaces the warm start's matvec; side() = L·v of the latest matvec gives L·x at the end."""
    n = 30
    B = torch.randn(n, n, generator=torch.Generator().manual_seed(5), dtype=DT) / n**0.5
    A = torch.eye(n, dtype=DT) + B @ B.T  # factored as I + B (Bᵀ v): the side product is Bᵀ v
    b = torch.randn(n, generator=torch.Generator().manual_seed(6), dtype=DT)
    x0 = torch.randn(n, generator=torch.Generator().manual_seed(7), dtype=DT)
    last: list[Tensor] = []

    def mv(v: Tensor) -> Tensor:
        last[:] = [B.T @ v]
        return v + B @ last[0]

    ref_info: dict = {}
    x_ref, it_ref = cg(mv, b, x0, tol=1e-12, info=ref_info)
    info: dict = {}
    x, it = cg(mv, b, x0, r0=b - A @ x0, side=lambda: last[0], side0=B.T @ x0, tol=1e-12, info=info)
    assert it == it_ref and info["matvecs"] == ref_info["matvecs"] - 1 == it
    assert torch.allclose(x, x_ref, atol=1e-12)
    assert torch.allclose(info["side"], B.T @ x, atol=1e-12)
    # cold start: side starts at zero, r0 = b
    x, _ = cg(mv, b, r0=b, side=lambda: last[0], tol=1e-12, info=info)
    assert torch.allclose(info["side"], B.T @ x, atol=1e-12)
    with pytest.raises(ValueError, match="side0"):
        cg(mv, b, x0, side=lambda: last[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cr_solves_spd_with_no_more_matvecs_than_cg(seed: int) -> None:
    """Conjugate residuals: same stopping rule, residual-norm-minimal iterates (no more iterations
    than CG), warm start, given r0 and the side product as for cg."""
    n = 50
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(n, n, generator=gen, dtype=DT) / n**0.5
    A = torch.eye(n, dtype=DT) + 20 * B @ B.T
    b = torch.randn(n, generator=gen, dtype=DT)
    x0 = 0.1 * torch.randn(n, generator=gen, dtype=DT)
    last: list[Tensor] = []

    def mv(v: Tensor) -> Tensor:
        last[:] = [B.T @ v]
        return v + 20 * B @ last[0]

    for tol in (1e-2, 1e-4, 1e-6):
        ic, ir = {}, {}
        _, k_cg = cg(mv, b, x0, tol=tol, info=ic, max_iter=500)
        x, k_cr = cr(mv, b, x0, r0=b - A @ x0, side=lambda: last[0], side0=B.T @ x0, tol=tol, info=ir, max_iter=500)
        assert ir["converged"] and ir["matvecs"] == k_cr
        assert k_cr <= k_cg or tol < 1e-4  # exact arithmetic; rounding may cost one at tight tolerances
        assert float(torch.linalg.vector_norm(b - A @ x)) <= tol * float(torch.linalg.vector_norm(b)) * 1.01
        assert torch.allclose(ir["side"], B.T @ x, atol=1e-10)
    x, _ = cr(mv, b, tol=1e-12, max_iter=500)
    assert torch.allclose(x, torch.linalg.solve(A, b), atol=1e-9)
    _, k = cr(mv, b, tol=1e-12, max_iter=3)
    assert k == 3


def test_scaled_warm_start_never_starts_worse() -> None:
    """c·x0 with c = ⟨b, A x0⟩/‖A x0‖²: initial residual ≤ min(‖b‖, ‖b − A x0‖), even for a bad x0."""
    gen = torch.Generator().manual_seed(11)
    n = 40
    A = torch.eye(n, dtype=DT) + torch.randn(n, n, generator=gen, dtype=DT) / n**0.5
    b = torch.randn(n, generator=gen, dtype=DT)
    for x0 in (torch.randn(n, generator=gen, dtype=DT) * 3, torch.linalg.solve(A, b) + 0.1):
        c = warm_scale(b, A @ x0)
        r = float(torch.linalg.vector_norm(b - c * A @ x0))
        assert r <= min(float(torch.linalg.vector_norm(b)), float(torch.linalg.vector_norm(b - A @ x0))) + 1e-12
        info: dict = {}
        x, _ = gmres(lambda v: A @ v, b, x0, tol=1e-10, restart=n, scale_warm=True, info=info)
        assert info["converged"] and torch.allclose(A @ x, b, atol=1e-8)
    assert warm_scale(b, torch.zeros(n, dtype=DT)) == 0.0


@pytest.mark.parametrize("restart", [5, 50])
def test_gmres_solves_nonsymmetric_systems(restart: int) -> None:
    n = 30
    g = torch.Generator().manual_seed(5)
    A = torch.eye(n, dtype=DT) * 2 + torch.randn(n, n, generator=g, dtype=DT) / n**0.5
    A = A + 1.5 * (torch.triu(A, 1) - torch.triu(A, 1).T)  # strongly non-symmetric
    b = torch.randn(n, generator=g, dtype=DT)
    info: dict = {}
    x, it = gmres(lambda v: A @ v, b, tol=1e-11, restart=restart, max_iter=2000, info=info)
    assert info["converged"], info
    true_res = float(torch.linalg.vector_norm(A @ x - b))
    assert true_res <= 1e-9 * float(torch.linalg.vector_norm(b))
    assert torch.allclose(x, torch.linalg.solve(A, b), atol=1e-8)
    # warm start from the solution: no Arnoldi step needed
    _, it0 = gmres(lambda v: A @ v, b, x, tol=1e-8, restart=restart)
    assert it0 == 0 and it > 0


def test_gmres_on_the_cgd_block_system() -> None:
    """The general-sum CGD matrix [[I, ηB], [ηC, I]] (non-symmetric), lists of blocks."""
    g = torch.Generator().manual_seed(6)
    B = torch.randn(4, 3, generator=g, dtype=DT)
    C = torch.randn(3, 4, generator=g, dtype=DT)
    M = torch.cat([torch.cat([torch.eye(4, dtype=DT), 0.7 * B], 1), torch.cat([0.7 * C, torch.eye(3, dtype=DT)], 1)])
    rhs = [torch.randn(4, generator=g, dtype=DT), torch.randn(3, generator=g, dtype=DT)]
    sol, _ = gmres(lambda v: [v[0] + 0.7 * B @ v[1], v[1] + 0.7 * C @ v[0]], rhs, tol=1e-13)
    assert torch.allclose(flatten(sol), torch.linalg.solve(M, flatten(rhs)), atol=1e-11)


@pytest.mark.parametrize("mode", ["exact", "fd"])
def test_antisymmetric_part_three_player_general_sum(mode: str) -> None:
    """(Aᵀv)_i = ½∇_i Σ_{j≠i}⟨v_j, ∇_j(f_j − f_i)⟩ equals ½(Jᵀ − J)v for quadratic losses f_i = ½θᵀQ_iθ + c_iᵀθ
    (J's row block i is row block i of Q_i), n products for n players."""
    gen = torch.Generator().manual_seed(3)
    sizes = [2, 3, 4]
    dim = sum(sizes)
    cuts = [0, 2, 5, 9]
    qs = [(lambda m: m + m.T)(torch.randn(dim, dim, generator=gen, dtype=DT)) for _ in range(3)]
    cs = [torch.randn(dim, generator=gen, dtype=DT) for _ in range(3)]
    xs = [nn.Parameter(torch.randn(n, generator=gen, dtype=DT)) for n in sizes]

    def losses() -> list[Tensor]:
        theta = torch.cat(xs)
        return [0.5 * theta @ q @ theta + c @ theta for q, c in zip(qs, cs, strict=True)]

    J = torch.cat([qs[i][cuts[i] : cuts[i + 1]] for i in range(3)], 0)
    v = [[torch.randn(n, generator=gen, dtype=DT)] for n in sizes]
    counts = {"grad": 0, "hvp": 0, "closure": 0}
    d = GameDerivatives([[x] for x in xs], losses(), evaluate=losses, mode=mode, counts=counts)
    got = flatten([t for x in d.field_antisymmetric(v) for t in x])
    want = 0.5 * (J.T - J) @ torch.cat([x[0] for x in v])
    assert torch.allclose(got, want, rtol=0, atol=(1e-12 if mode == "exact" else 1e-7) * float(want.abs().max()))
    assert counts["hvp"] == 3
