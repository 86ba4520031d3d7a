"""Matrix-free Krylov solvers for the second-order game optimizers' linear systems A x = b.

Conjugate gradients :func:`cg` and conjugate residuals :func:`cr` for symmetric positive definite
operators, restarted GMRES :func:`gmres` for non-symmetric ones. The operator is a ``matvec`` on flat
vectors or on lists of tensors. All three start and stop the same way (:func:`start`):

* a warm start ``x0`` costs one ``matvec`` for the initial residual b − A x0 (none for an absent or zero
  ``x0``, or when the caller passes that residual as ``r0``);
* they stop when the residual NORM ``‖b − Ax‖ ≤ max(tol·‖b‖, atol)`` (``tol`` relative, ``atol``
  absolute; not the squared norm) or after ``max_iter`` operator applications (default: the dimension);
* they return ``(x, iterations)``, iterations counting the ``matvec`` calls after the initial residual,
  and fill ``info`` (if given) with ``residual``, ``threshold``, ``converged``, ``matvecs`` and
  ``iterations``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .derivatives import flatten, unflatten

Vector = Tensor | Sequence[Tensor]
MatVec = Callable[[Any], Any]

__all__ = ["KrylovRun", "cg", "cr", "gmres", "start", "warm_scale"]


def warm_scale(b: Tensor, ax0: Tensor) -> float:
    """The multiple c of a warm start x0 minimising ‖b − c·A x0‖: ⟨b, A x0⟩ / ‖A x0‖² (0 if A x0 = 0).

    Starting from c·x0 instead of x0 costs nothing once A x0 is known, and the initial residual is then
    never larger than b's (a cold start's, c = 0) nor than x0's own (c = 1)."""
    den = float(torch.dot(ax0, ax0))
    return float(torch.dot(b, ax0)) / den if den > 0.0 else 0.0


class KrylovRun:
    """One solve on flat vectors: the operator ``mv``, right-hand side ``b``, start point ``x`` with its
    residual ``r``, the stopping threshold and the bookkeeping (``matvecs``; ``lx``, the running L·x of a
    ``side`` product, None for zero)."""

    def __init__(self, mv: Callable[[Tensor], Tensor], b: Tensor, x: Tensor, r: Tensor, threshold: float,
                 max_iter: int, matvecs: int, to_output: Callable[[Tensor], Any], lx: Tensor | None) -> None:
        self.mv, self.b, self.x, self.r = mv, b, x, r
        self.threshold, self.max_iter, self.matvecs = threshold, max_iter, matvecs
        self.to_output = to_output
        self.lx = lx

    def apply(self, v: Tensor) -> Tensor:
        """A·v, counted."""
        self.matvecs += 1
        return self.mv(v)

    def track_side(self, alpha: Tensor, lp: Tensor) -> None:
        """L·x_{k+1} = L·x_k + α_k L·p_k along x_{k+1} = x_k + α_k p_k."""
        self.lx = alpha * lp if self.lx is None else self.lx + alpha * lp

    def finish(self, x: Tensor, residual: float, iterations: int, info: dict[str, Any] | None,
               side: bool = False) -> tuple[Any, int]:
        """``(x, iterations)`` in the caller's shapes; ``info`` filled (with ``side``: L·x too)."""
        if info is not None:
            info.update(residual=residual, threshold=self.threshold, converged=residual <= self.threshold,
                        matvecs=self.matvecs, iterations=iterations)
            if side:
                info["side"] = self.lx
        return self.to_output(x), iterations


def start(
    matvec: MatVec,
    b: Vector,
    x0: Vector | None,
    *,
    tol: float,
    atol: float,
    max_iter: int | None,
    r0: Any = None,
    side: Callable[[], Tensor] | None = None,
    side0: Tensor | None = None,
    scale_warm: bool = False,
    name: str = "krylov",
) -> KrylovRun:
    """Set up a solve: flatten a list-valued problem, take the start point and its residual (the caller's
    ``r0`` if given: no operator work; else b − A x0, one ``matvec`` for a non-zero ``x0``, from its best
    multiple with ``scale_warm``, :func:`warm_scale`) and the threshold max(tol·‖b‖, atol); L·x starts at
    ``side0`` for a warm start with ``side`` (required then), else zero."""
    if isinstance(b, Tensor):
        mv, bf, x0f, to_output = matvec, b, x0, (lambda x: x)
    else:
        like = list(b)
        bf = flatten(like)

        def mv(v: Tensor) -> Tensor:
            return flatten(matvec(unflatten(v, like)))

        x0f = flatten(list(x0)) if x0 is not None else None

        def to_output(x: Tensor) -> list[Tensor]:
            return unflatten(x, like)

    max_iter = bf.numel() if max_iter is None else int(max_iter)
    threshold = max(tol * float(torch.linalg.vector_norm(bf)), atol)
    warm = x0f is not None and bool(torch.any(x0f != 0))
    matvecs = 0
    if r0 is not None:
        r = (flatten(list(r0)) if not isinstance(r0, Tensor) else r0).detach().to(bf)
        x = x0f.detach().clone().to(bf) if warm else torch.zeros_like(bf)
    elif not warm:
        x, r = torch.zeros_like(bf), bf.clone()
    else:
        x = x0f.detach().clone().to(bf)
        ax = mv(x)
        matvecs = 1
        if scale_warm:
            c = warm_scale(bf, ax)
            x, ax = c * x, c * ax
        r = bf - ax
    if side is not None and warm and side0 is None:
        raise ValueError(f"{name}: a warm start with side() needs side0 = L·x0")
    return KrylovRun(mv, bf, x, r, threshold, max_iter, matvecs, to_output,
                     side0 if (side is not None and warm) else None)


def cg(
    matvec: MatVec,
    b: Vector,
    x0: Vector | None = None,
    *,
    tol: float = 1e-10,
    atol: float = 0.0,
    max_iter: int | None = None,
    info: dict[str, Any] | None = None,
    r0: Tensor | None = None,
    side: Callable[[], Tensor] | None = None,
    side0: Tensor | None = None,
) -> tuple[Any, int]:
    """Conjugate gradients for A x = b with A symmetric positive definite, given as ``matvec``.

    Where A is not positive definite along a search direction, CG stops there (truncated Newton), returning the
    iterate reached, or x0 + r0 (the steepest-descent direction) when that happens at the first direction, so that
    a Newton step on indefinite curvature is never silently zero; ``info["negative_curvature"]`` says it happened.

    Starts and stops as described in the module doc: a warm start ``x0`` costs one extra ``matvec`` for
    the initial residual, unless the caller passes that residual ``r0 = b − A x0`` (flat, like ``b``
    flattened; with ``x0`` absent or zero, r0 is b). Works on flat tensors or on lists of tensors (then
    ``x`` is a list too).

    ``side``: a by-product of ``matvec`` that is LINEAR in its argument — ``side()`` returns L·v for
    the v of the latest ``matvec`` call (e.g. an intermediate product of a factored operator). CG
    then keeps L·x up to date along with x (L·x_{k+1} = L·x_k + α_k L·p_k, no extra operator work)
    and returns it in ``info["side"]``; ``side0`` is L·x0 (needed for a non-zero warm start; zero
    otherwise). In floating point the update drifts from a fresh L·x by rounding only (≈ k·eps).
    """
    run = start(matvec, b, x0, tol=tol, atol=atol, max_iter=max_iter, r0=r0, side=side, side0=side0, name="cg")
    if info is not None:
        info["negative_curvature"] = False
    x, r = run.x, run.r
    rs = torch.dot(r, r)
    res = math.sqrt(float(rs))
    it = 0
    if res > run.threshold:
        p = r.clone()
        while it < run.max_iter:
            ap = run.apply(p)
            it += 1
            pap = torch.dot(p, ap)
            if float(pap) <= 0.0:  # not positive definite along p (or breakdown): stop here
                if it == 1:  # at the first direction, the residual itself (Nocedal & Wright, Alg. 7.1): never 0
                    x = x + p
                    if side is not None:
                        run.track_side(1.0, side())
                    r = r - ap
                    res = math.sqrt(float(torch.dot(r, r)))
                if info is not None:
                    info["negative_curvature"] = True
                break
            alpha = rs / pap
            x = x + alpha * p
            if side is not None:
                run.track_side(alpha, side())
            r = r - alpha * ap
            rs_new = torch.dot(r, r)
            res = math.sqrt(float(rs_new))
            if res <= run.threshold:
                break
            p = r + (rs_new / rs) * p
            rs = rs_new
    return run.finish(x, res, it, info, side=side is not None)


def cr(
    matvec: MatVec,
    b: Vector,
    x0: Vector | None = None,
    *,
    tol: float = 1e-10,
    atol: float = 0.0,
    max_iter: int | None = None,
    info: dict[str, Any] | None = None,
    r0: Tensor | None = None,
    side: Callable[[], Tensor] | None = None,
    side0: Tensor | None = None,
    definite: bool = True,
) -> tuple[Any, int]:
    """Conjugate residuals (Stiefel 1955; Saad, "Iterative Methods for Sparse Linear Systems",
    Alg. 6.20) for A x = b with A symmetric positive definite: the iterate minimising the residual
    NORM over the Krylov space (as MINRES), where CG minimises the A-norm of the error. With the
    residual-norm stopping rule ‖b − Ax‖ ≤ max(tol·‖b‖, atol) it never needs more operator
    applications than CG in exact arithmetic, and the residual decreases monotonically. One
    ``matvec`` per iteration (on the residual; A·p follows by recurrence), two more vectors kept.
    Same arguments and results as :func:`cg` (``side`` tracked along the same recurrences).

    ``definite=False``: A symmetric but possibly indefinite (a Newton system on a Hessian with negative
    eigenvalues). The recurrences hold for any symmetric A; only an exact breakdown (rᵀAr = 0 or Ap = 0)
    stops the iteration, where the definite form stops at the first rᵀAr ≤ 0.
    """
    run = start(matvec, b, x0, tol=tol, atol=atol, max_iter=max_iter, r0=r0, side=side, side0=side0, name="cr")
    x, r = run.x, run.r
    res = float(torch.linalg.vector_norm(r))
    it = 0
    if res > run.threshold and run.max_iter > 0:
        ar = run.apply(r)
        it += 1
        lp = side() if side is not None else None
        p, ap = r.clone(), ar
        rar = torch.dot(r, ar)
        while True:
            apap = torch.dot(ap, ap)
            if (float(rar) <= 0.0 if definite else float(rar) == 0.0) or float(apap) <= 0.0:
                break  # not positive definite (definite form), or breakdown
            alpha = rar / apap
            x = x + alpha * p
            if lp is not None:
                run.track_side(alpha, lp)
            r = r - alpha * ap
            res = float(torch.linalg.vector_norm(r))
            if res <= run.threshold or it >= run.max_iter:
                break
            ar = run.apply(r)
            it += 1
            rar_new = torch.dot(r, ar)
            beta = rar_new / rar
            p = r + beta * p
            ap = ar + beta * ap
            if lp is not None:
                lp = side() + beta * lp
            rar = rar_new
    return run.finish(x, res, it, info, side=side is not None)


def gmres(
    matvec: MatVec,
    b: Vector,
    x0: Vector | None = None,
    *,
    tol: float = 1e-10,
    atol: float = 0.0,
    restart: int = 20,
    max_iter: int | None = None,
    info: dict[str, Any] | None = None,
    scale_warm: bool = False,
) -> tuple[Any, int]:
    """Restarted GMRES(m) (Saad & Schultz 1986) for A x = b with a general (non-symmetric) A.

    Arnoldi with modified Gram–Schmidt, Givens rotations for the small least-squares problem
    (kept in float64). The residual norm it stops on is the Givens estimate of ‖b − Ax‖; ``max_iter``
    bounds the Arnoldi steps. Every restart — and a non-zero warm start ``x0`` — costs one extra
    ``matvec`` for the explicit residual; iterations count the Arnoldi ``matvec`` calls.
    ``scale_warm``: start from the best multiple of ``x0`` (:func:`warm_scale`, free).
    """
    run = start(matvec, b, x0, tol=tol, atol=atol, max_iter=max_iter, scale_warm=scale_warm, name="gmres")
    m = max(1, int(restart))
    x, r, thr, max_iter = run.x, run.r, run.threshold, run.max_iter
    total = 0
    res = float(torch.linalg.vector_norm(r))
    while res > thr and total < max_iter:
        beta = res
        basis = [r / beta]
        h = torch.zeros(m + 1, m, dtype=torch.float64)
        cs = torch.zeros(m, dtype=torch.float64)
        sn = torch.zeros(m, dtype=torch.float64)
        g = torch.zeros(m + 1, dtype=torch.float64)
        g[0] = beta
        j_used = 0
        for j in range(m):
            w = run.apply(basis[j])
            total += 1
            for i in range(j + 1):
                hij = torch.dot(w, basis[i])
                h[i, j] = float(hij)
                w = w - hij * basis[i]
            hnext = float(torch.linalg.vector_norm(w))
            h[j + 1, j] = hnext
            for i in range(j):  # apply the earlier rotations to the new column
                a, c = h[i, j].item(), h[i + 1, j].item()
                h[i, j] = cs[i] * a + sn[i] * c
                h[i + 1, j] = -sn[i] * a + cs[i] * c
            a, c = h[j, j].item(), h[j + 1, j].item()
            denom = math.hypot(a, c)
            cs[j], sn[j] = (1.0, 0.0) if denom == 0.0 else (a / denom, c / denom)
            h[j, j] = denom
            h[j + 1, j] = 0.0
            g[j + 1] = -sn[j] * g[j]
            g[j] = cs[j] * g[j]
            res = abs(float(g[j + 1]))
            j_used = j + 1
            breakdown = hnext <= 1e-14 * beta
            if res <= thr or total >= max_iter or breakdown:
                break
            basis.append(w / hnext)
        # back substitution on the j_used × j_used upper-triangular system
        y = torch.zeros(j_used, dtype=torch.float64)
        for i in range(j_used - 1, -1, -1):
            s = float(g[i]) - float(torch.dot(h[i, i + 1 : j_used], y[i + 1 : j_used]))
            y[i] = s / float(h[i, i]) if h[i, i] != 0 else 0.0
        for i in range(j_used):
            x = x + float(y[i]) * basis[i]
        if res <= thr or total >= max_iter:
            break
        r = run.b - run.apply(x)  # restart from the true residual
        res = float(torch.linalg.vector_norm(r))
    return run.finish(x, res, total, info)
