"""Zeroth-order (finite-difference) gradient estimates: ``optim.grad: zo`` for every method that takes its
gradients with :meth:`~saddlepoint.optim.base.GameOptimizer.gradient` (the first-order methods, the
extrapolation methods, lookahead's inner method, LEAD with ``coupling: difference``).

Player i's gradient g = ∇_{θ_i} f_i is estimated from values of f_i alone (Nesterov & Spokoiny 2017, "Random
gradient-free minimization of convex functions", eqs. 21 and 30; Liu et al., ICML 2020, "Min-max optimization
without gradients", eq. 2), with q directions u_k and smoothing radius μ (``optim.zo.q``, ``optim.zo.mu``):

    central (default):  ĝ = (s/q) Σ_k [f(θ + μu_k) − f(θ − μu_k)] / (2μ) · u_k        (2q evaluations)
    forward:            ĝ = (s/q) Σ_k [f(θ + μu_k) − f(θ)] / μ · u_k                  (q evaluations; f(θ) is known)

``optim.zo.directions``: ``gaussian`` (u ~ N(0, I), s = 1), ``rademacher`` (±1 entries, s = 1), ``sphere``
(uniform on the unit sphere, s = d, the dimension), ``coordinate`` (u_k = e_k for every coordinate k, s = 1,
divided by 1 instead of q: the classical coordinate-wise differences, 2d or d evaluations), and ``auto`` (the
default): ``coordinate`` when d ≤ q, i.e. when coordinate-wise differences cost no more evaluations than the q
random directions, else ``gaussian``.

Closed forms on a quadratic f (gradient g, Hessian H), which the tests check:

* central differences are exact along every direction, so ĝ = (s/q) Σ u_k u_kᵀ g: unbiased (E[s u uᵀ] = I),
  with mean squared error E‖ĝ − g‖² = (E‖s u uᵀg‖² − ‖g‖²)/q. Gaussian: E[(uᵀg)²‖u‖²] = (d + 2)‖g‖², so the
  error is (d + 1)‖g‖²/q; sphere (s = d): d²·‖g‖²/d − ‖g‖², i.e. (d − 1)‖g‖²/q; Rademacher: ‖u‖² = d, so again
  (d − 1)‖g‖²/q. Coordinate-wise central differences are exact.
* forward differences add (μ/2) uᵀHu along u: the random-direction estimates stay unbiased (odd moments of
  symmetric directions vanish) and their error tends to the central one as μ → 0; the coordinate-wise forward
  estimate is off by exactly (μ/2)·diag(H).
* hence the cosine between ĝ and g is ≈ 1/√(1 + d/q) for d ≫ 1 (Gaussian: E⟨ĝ, g⟩ = ‖g‖², E‖ĝ‖² ≈ (1 + d/q)‖g‖²).

Every evaluation of one estimate sees the same minibatch, noise, dropout masks and BatchNorm statistics (the
optimizer's step replays the random streams and buffers for every closure call, and the GAN closure keeps its
batch); the registered buffers are put back after the estimate, so they hold the update of the evaluation at θ.
Directions are regenerated from a seed (``optim.zo.seed`` mixed with the step count, the player and the estimate's
index in the step, :func:`seed_for`): nothing is stored but one direction at a time, and every data-parallel worker
draws the same directions, so averaging the workers' estimates gives the estimate on the global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from .. import checks
from ..checks import Option

__all__ = ["DIRECTIONS", "ZO_OPTIONS", "cosine", "estimate", "resolve_directions", "seed_for", "zo_options"]

DIRECTIONS = ("auto", "gaussian", "sphere", "rademacher", "coordinate")


def _choice(values: tuple[str, ...]) -> Callable[[str, Any], str]:
    return lambda key, value: checks.choice(key, value, values)  # type: ignore[return-value]


#: the options of ``optim.zo`` (a nested mapping: ``--set optim.zo.q=10``)
ZO_OPTIONS: dict[str, Option] = {
    "directions": Option("auto", _choice(DIRECTIONS), "direction distribution (auto: coordinate when d ≤ q)"),
    "difference": Option("central", _choice(("central", "forward")), "central or forward differences"),
    "q": Option(10, lambda k, v: checks.integer(k, v, low=1, parse=True), "directions per estimate"),
    "mu": Option(1e-3, lambda k, v: checks.number(k, v, low=0, low_open=True, parse=True), "smoothing radius"),
    "check_every": Option(0, lambda k, v: checks.integer(k, v, low=0, parse=True),
                          "every this many steps, the cosine with the autograd gradient (0: never)"),
    "seed": Option(0, lambda k, v: checks.integer(k, v, low=0, parse=True), "seed of the directions"),
}


def zo_options(given: Any, key: str = "optim.zo") -> dict[str, Any]:
    """``optim.zo`` validated, with the defaults of the options not given."""
    if given is None:
        given = {}
    return checks.options(key, checks.mapping(key, given), ZO_OPTIONS)


def seed_for(*parts: int) -> int:
    """A 63-bit seed mixing integers (splitmix64 steps): the same on every run, worker and platform."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return x & 0x7FFFFFFFFFFFFFFF


def resolve_directions(kind: str, dim: int, q: int) -> str:
    """``auto`` → ``coordinate`` when ``dim ≤ q``, else ``gaussian``; other kinds unchanged."""
    if kind == "auto":
        return "coordinate" if dim <= q else "gaussian"
    return kind


def _random_directions(kind: str, dim: int, q: int, generator: torch.Generator) -> Iterator[Tensor]:
    """q flat float64 directions (sphere: unit norm), drawn one at a time."""
    for _ in range(q):
        if kind == "rademacher":
            yield (torch.randint(0, 2, (dim,), generator=generator) * 2 - 1).to(torch.float64)
        else:
            u = torch.randn(dim, generator=generator, dtype=torch.float64)
            yield u / torch.linalg.vector_norm(u) if kind == "sphere" else u


def estimate(
    f: Callable[[], float],
    params: Sequence[Tensor],
    *,
    f0: float | None = None,
    directions: str = "auto",
    difference: str = "central",
    q: int = 10,
    mu: float = 1e-3,
    seed: int = 0,
) -> tuple[list[Tensor], int]:
    """The zeroth-order estimate of ∇f at the current ``params`` and the number of evaluations of ``f`` it took.

    ``f()`` evaluates the function at the parameters' current values; it is called with the parameters moved in
    place (under ``torch.no_grad``), which are put back bit for bit afterwards. ``f0`` is f at the current point
    (forward differences; evaluated here if not given). Directions are drawn from ``seed`` on the CPU."""
    params = list(params)
    dim = sum(p.numel() for p in params)
    kind = resolve_directions(directions, dim, q)
    saved = [p.detach().clone() for p in params]
    evaluations = 0
    if difference == "forward" and f0 is None:
        f0 = f()
        evaluations += 1
    flat_grad = torch.zeros(dim, dtype=torch.float64)
    try:
        if kind == "coordinate":
            evaluations += _coordinates(f, params, saved, flat_grad, f0, difference, mu)
        else:
            generator = torch.Generator().manual_seed(seed)
            scale = (dim if kind == "sphere" else 1.0) / q
            for u in _random_directions(kind, dim, q, generator):
                _move(params, saved, u, mu)
                plus = f()
                if difference == "central":
                    _move(params, saved, u, -mu)
                    slope = (plus - f()) / (2 * mu)
                else:
                    assert f0 is not None
                    slope = (plus - f0) / mu
                evaluations += 2 if difference == "central" else 1
                flat_grad.add_(u, alpha=slope * scale)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
    out, offset = [], 0
    for p in params:
        out.append(flat_grad[offset : offset + p.numel()].view(p.shape).to(p.device, p.dtype))
        offset += p.numel()
    return out, evaluations


@torch.no_grad()
def _move(params: list[Tensor], saved: list[Tensor], u: Tensor, step: float) -> None:
    """θ ← θ₀ + step·u (u flat, float64 on the CPU)."""
    offset = 0
    for p, s in zip(params, saved, strict=True):
        n = p.numel()
        p.copy_(s + step * u[offset : offset + n].view(p.shape).to(p.device, p.dtype))
        offset += n


def _coordinates(f: Callable[[], float], params: list[Tensor], saved: list[Tensor], out: Tensor, f0: float | None,
                 difference: str, mu: float) -> int:
    """Coordinate-wise differences into ``out`` (flat); returns the number of evaluations."""
    evaluations, offset = 0, 0
    for p, s in zip(params, saved, strict=True):
        with torch.no_grad():  # a view made here, so that writing through it moves p (and bumps its version)
            flat = p.view(-1)
        flat_saved = s.view(-1)
        for j in range(p.numel()):
            with torch.no_grad():
                flat[j] = flat_saved[j] + mu
            plus = f()
            if difference == "central":
                with torch.no_grad():
                    flat[j] = flat_saved[j] - mu
                out[offset + j] = (plus - f()) / (2 * mu)
                evaluations += 2
            else:
                assert f0 is not None
                out[offset + j] = (plus - f0) / mu
                evaluations += 1
            with torch.no_grad():
                flat[j] = flat_saved[j]
        offset += p.numel()
    return evaluations


def cosine(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    """cos∠(a, b) of two parameter-shaped lists (nan when either is zero)."""
    dot = sum(float(torch.sum(x.double() * y.double())) for x, y in zip(a, b, strict=True))
    na = sum(float(torch.sum(x.double() ** 2)) for x in a) ** 0.5
    nb = sum(float(torch.sum(y.double() ** 2)) for y in b) ** 0.5
    return dot / (na * nb) if na > 0 and nb > 0 else float("nan")
