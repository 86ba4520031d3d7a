"""Krylov solvers (saddlepoint.optim.krylov): CG, CR and GMRES against dense linear algebra in float64."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from saddlepoint.optim.derivatives import flatten, unflatten
from saddlepoint.optim.krylov import cg, cr, gmres, warm_scale

DT = torch.float64


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


def test_cg_on_negative_curvature_at_the_first_direction_returns_the_residual_direction():
    """Truncated Newton (Nocedal & Wright, Alg. 7.1): pᵀAp ≤ 0 at j = 0 gives x = b, never a silent zero step."""
    A = torch.tensor([[-2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 0.0], dtype=torch.float64)
    info: dict = {}
    x, iterations = cg(lambda v: A @ v, b, tol=1e-12, info=info)
    assert iterations == 1 and info["negative_curvature"] is True
    assert torch.equal(x, b)
    # later in the iteration the iterate reached is kept (here: exact along e2, then indefinite along e1)
    b2 = torch.tensor([1.0, 1.0], dtype=torch.float64)
    x2, _ = cg(lambda v: torch.diag(torch.tensor([-2.0, 3.0], dtype=torch.float64)) @ v, b2, info=info)
    assert info["negative_curvature"] is True and torch.all(torch.isfinite(x2))
    # positive definite systems are untouched
    x3, _ = cg(lambda v: (A.abs()) @ v, b2, tol=1e-12, info=info)
    assert info["negative_curvature"] is False
    assert torch.allclose(A.abs() @ x3, b2, atol=1e-10)
