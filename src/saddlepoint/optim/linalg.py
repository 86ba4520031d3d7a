"""Matrix-free linear algebra for the second-order game optimizers.

Three pieces, shared by consensus optimization, SGA, CGD and ACGD:

* **Flat vectors**: :func:`flatten` / :func:`unflatten` between a list of parameter-shaped tensors and
  one 1-D tensor.
* **Second-derivative products** of the players' losses at one point, :class:`GameDerivatives`:
  the mixed product ``D^{(k)}_{ab} v = ∇_{θ_a}(∇_{θ_b} f_k · v)`` (with ``a = b`` a Hessian-vector
  product; with ``k = a`` the block ``J_{ab} v`` of the game Jacobian J = ∂ξ/∂θ of the field
  ξ = (∇_{θ_i} f_i)_i) and the whole-field products ``Jᵀv`` and ``Jv``. Only second derivatives
  are ever taken (a backward pass through a gradient's graph).

  - ``mode="exact"``: double backpropagation through gradients taken once with ``create_graph=True``
    and cached, so every further product of the step reuses the same graph (the main saving: a
    product then costs one backward pass, ≈ 0.7 gradients on DCGAN-28, against ≈ 3 for a fresh HVP).
  - ``mode="fd"``: central finite differences of gradients,
    ``(∇f(θ + εv) − ∇f(θ − εv)) / 2ε`` with the *relative* step
    ``ε = eps_rel · (1 + ‖θ_b‖) / ‖v‖`` — the perturbation ``εv`` has norm ``eps_rel·(1 + ‖θ_b‖)``,
    i.e. it scales with the parameters it perturbs, not with ``v``. ``eps_rel`` defaults to
    ``machine_eps^(1/3)`` of the parameters' dtype (≈ 4.9e-3 in float32, 6.1e-6 in float64), the
    usual balance of truncation (O(ε²)) against rounding (O(eps/ε)) error for central differences.
    Each product re-evaluates the closure twice; the optimizer framework gives every evaluation of a
    step the same batch, noise, dropout masks and BatchNorm buffers. Accurate to ≈ 1e-4 on smooth
    networks; on ReLU/LeakyReLU networks the kinks make it unreliable (see REFERENCES.md).

  Every product adds 1 to ``counts["hvp"]``; every gradient evaluation adds 1 to ``counts["grad"]``
  (finite-difference products count only as products; their closure calls show in
  ``counts["closure"]``).
* **Krylov solvers** on flat vectors or lists of tensors: conjugate gradients :func:`cg` for
  symmetric positive definite operators and restarted GMRES :func:`gmres` for non-symmetric ones.
  Both stop when the residual NORM ``‖b − Ax‖ ≤ max(tol·‖b‖, atol)`` (``tol`` relative, ``atol``
  absolute; not the squared norm) or after ``max_iter`` operator applications, take a warm start
  ``x0`` and return ``(x, iterations)``.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .amp import LossScaler, current_scaler

Vector = Tensor | Sequence[Tensor]
MatVec = Callable[[Any], Any]

__all__ = [
    "GameDerivatives",
    "Pushforward",
    "Reduce",
    "cg",
    "cr",
    "current_reduce",
    "default_fd_eps",
    "dot",
    "flatten",
    "gmres",
    "unflatten",
    "vjp",
    "warm_scale",
]


#: averages a list of tensors over data-parallel workers (returns new tensors); None: one process
Reduce = Callable[[Sequence[Tensor]], list[Tensor]]
_REDUCE: contextvars.ContextVar[Reduce | None] = contextvars.ContextVar("saddlepoint_reduce", default=None)


def current_reduce() -> Reduce | None:
    """The reduction of the game optimizer whose step is running (set by ``GameOptimizer.step``)."""
    return _REDUCE.get()


def straight_through(local: Sequence[Tensor], reduced: Sequence[Tensor]) -> list[Tensor]:
    """Tensors with the VALUES of ``reduced`` and the autograd graph of ``local`` (derivatives taken
    through them are the local ones; products built on them are reduced afterwards)."""
    return [g + (r - g).detach() if g.requires_grad else r for g, r in zip(local, reduced, strict=True)]


# ----------------------------------------------------------------------------- flat vectors
def flatten(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate tensors (any shapes) into one 1-D tensor."""
    tensors = list(tensors)
    if not tensors:
        return torch.zeros(0)
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vec: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a 1-D tensor into views shaped like the tensors in ``like``."""
    out, offset = [], 0
    for t in like:
        n = t.numel()
        out.append(vec[offset : offset + n].view(t.shape))
        offset += n
    if offset != vec.numel():
        raise ValueError(f"unflatten: vector has {vec.numel()} entries, shapes need {offset}")
    return out


def dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """Σ ⟨a_i, b_i⟩ over two lists of equally shaped tensors (a 0-d tensor)."""
    total = None
    for x, y in zip(a, b, strict=True):
        term = torch.sum(x * y)
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def default_fd_eps(dtype: torch.dtype) -> float:
    """machine_eps^(1/3): the relative finite-difference step for central differences."""
    return float(torch.finfo(dtype).eps) ** (1.0 / 3.0)


def vjp(
    outputs: Sequence[Tensor],
    inputs: Sequence[Tensor],
    grad_outputs: Sequence[Tensor],
    *,
    create_graph: bool = False,
) -> list[Tensor]:
    """∇_inputs Σ ⟨outputs_i, grad_outputs_i⟩, zeros for inputs the outputs do not depend on.

    Outputs that carry no graph (constants, e.g. the gradient of a bilinear term with respect to its
    own variable) contribute nothing. The graph is always retained.
    """
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    if not pairs:
        return [torch.zeros_like(p) for p in inputs]
    res = torch.autograd.grad(
        [o for o, _ in pairs],
        list(inputs),
        [g for _, g in pairs],
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )
    return [torch.zeros_like(p) if r is None else r for p, r in zip(inputs, res, strict=True)]


# ----------------------------------------------------------------------------- products
@dataclass
class Pushforward:
    """Player b reaches every loss only through ``output`` (a GAN generator: its samples x̃ = G(z));
    ``jvp(v)`` returns J_b v, the change of ``output`` along v (shaped like b's parameters), by forward-mode
    differentiation. Then D_ab·v = ∇_{θ_a}(∇_{θ_b} f·v) = ∇_{θ_a}⟨∇_output f, J_b v⟩ for a ≠ b, with J_b v
    independent of θ_a: a forward-mode pass through b's network and a backward pass through the rest,
    instead of a backward pass through the graph of ∇_{θ_b} f (b's own backward graph, differentiated again).
    On DCGAN-28 the generator side of the product drops from 0.95 to 0.77 gradients with ``torch.func.jvp`` and to
    0.55 with the trainer's tangent-only pass over G's recorded layers (benchmarks, part dyx).
    """

    output: Tensor
    jvp: Callable[[Sequence[Tensor]], Tensor]


class GameDerivatives:
    """Gradients and second-derivative products of a game's losses at the current point.

    ``players[i]`` is player i's parameter list; ``losses`` are the losses evaluated at the current
    point (with their graph). ``evaluate()`` re-evaluates the losses at the current parameter values
    (needed by ``mode="fd"`` only). One instance serves one optimizer step: cached gradients belong
    to the point at which ``losses`` were computed.
    """

    def __init__(
        self,
        players: Sequence[Sequence[Tensor]],
        losses: Sequence[Tensor],
        *,
        evaluate: Callable[[], Sequence[Tensor]] | None = None,
        mode: str = "exact",
        eps_rel: float | None = None,
        counts: dict[str, int] | None = None,
        reduce: Reduce | None | str = "current",
        scaler: LossScaler | None | str = "current",
        pushforward: Mapping[int, Pushforward] | None = None,
    ) -> None:
        if mode not in ("exact", "fd"):
            raise ValueError(f"hvp mode must be 'exact' or 'fd', got {mode!r}")
        if mode == "fd" and evaluate is None:
            raise ValueError("finite-difference products need an evaluate() callable")
        self.players = [list(p) for p in players]
        self.losses = list(losses)
        self.evaluate = evaluate
        self.mode = mode
        dtype = self.players[0][0].dtype if self.players and self.players[0] else torch.float32
        self.eps_rel = default_fd_eps(dtype) if eps_rel is None else float(eps_rel)
        self.counts = counts if counts is not None else {"grad": 0, "hvp": 0, "closure": 0}
        self.counts.setdefault("grad", 0)
        self.counts.setdefault("hvp", 0)
        # (k, b) -> (∇_{θ_b} f_k, has_graph)
        self._grads: dict[tuple[int, int], tuple[list[Tensor], bool]] = {}
        self._perturbed = False
        # data parallel: gradients and products are averaged over the workers by ``reduce``
        # (default: the running optimizer's, see :func:`current_reduce`); the cached gradients keep
        # their LOCAL graph (products are local backward passes, averaged afterwards)
        self.reduce: Reduce | None = current_reduce() if reduce == "current" else reduce  # type: ignore[assignment]
        self._reduced: dict[tuple[int, int], list[Tensor]] = {}
        # loss scaling (float16 autocast): the losses are scaled, so are the cached gradients and every
        # product; values are unscaled on the way out, after the average, and checked for inf/NaN
        # (:class:`~saddlepoint.optim.amp.NonFiniteGradients` aborts the step)
        self.scaler: LossScaler | None = current_scaler() if scaler == "current" else scaler  # type: ignore[assignment]
        if self.scaler is not None and not self.scaler.enabled:
            self.scaler = None
        # exact mixed products D_ab·v through a player b's declared output (see :class:`Pushforward`)
        self.pushforward = dict(pushforward or {}) if mode == "exact" else {}
        self._output_grads: dict[tuple[int, int], Tensor] = {}

    def _finish(self, tensors: list[Tensor]) -> list[Tensor]:
        """Unscale, average over the workers, check: the values handed to a method."""
        if self.scaler is not None:
            tensors = self.scaler.unscale(tensors)
        if self.reduce is not None:
            tensors = straight_through(tensors, self.reduce([t.detach() for t in tensors]))
        if self.scaler is not None:
            self.scaler.check(tensors)
        return tensors

    def _out(self, results: list[list[Tensor]]) -> list[list[Tensor]]:
        """Average a list of products over the workers (one flat all-reduce) and unscale them; identity in
        one process without loss scaling."""
        if self.reduce is None and self.scaler is None:
            return results
        flat = self._finish([t for r in results for t in r])
        out, offset = [], 0
        for r in results:
            out.append(flat[offset : offset + len(r)])
            offset += len(r)
        return out

    def _local(self, k: int, b: int, *, graph: bool | None = None) -> list[Tensor]:
        if (k, b) not in self._grads or (graph and not self._grads[(k, b)][1]):
            self.prepare(k, [b], graph=graph)
        return self._grads[(k, b)][0]

    # ------------------------------------------------------------------ gradients
    def prepare(self, k: int, blocks: Sequence[int], *, graph: bool | None = None) -> None:
        """Compute ∇_{θ_b} f_k for every b in ``blocks`` in ONE backward pass and cache it.

        ``graph`` (default: True in exact mode, False in fd mode) keeps the graph for products.
        """
        graph = (self.mode == "exact") if graph is None else graph
        todo = [b for b in blocks if (k, b) not in self._grads or (graph and not self._grads[(k, b)][1])]
        todo = list(dict.fromkeys(todo))
        if not todo:
            return
        if self._perturbed:
            # a finite-difference product changed the parameters in place since ``losses`` were
            # computed (then restored them): their graph is stale, evaluate again at the same point
            assert self.evaluate is not None
            self.losses = list(self.evaluate())
            self._perturbed = False
        params = [p for b in todo for p in self.players[b]]
        loss = self.losses[k]
        if loss.requires_grad:
            res = torch.autograd.grad(loss, params, retain_graph=True, create_graph=graph, allow_unused=True)
        else:
            res = (None,) * len(params)
        self.counts["grad"] += 1
        res = [torch.zeros_like(p) if g is None else g for p, g in zip(params, res, strict=True)]
        offset = 0
        for b in todo:
            n = len(self.players[b])
            self._grads[(k, b)] = (res[offset : offset + n], graph)
            self._reduced.pop((k, b), None)
            offset += n

    def grad(self, k: int, b: int, *, graph: bool | None = None) -> list[Tensor]:
        """∇_{θ_b} f_k at the current point, cached. ``graph=None``: any cached version (computed
        with a graph in exact mode if nothing is cached); ``True``: with graph; ``False``: plain.
        Data parallel: the value is averaged over the workers (the graph stays the local one)."""
        local = self._local(k, b, graph=graph)
        if self.reduce is None and self.scaler is None:
            return local
        if (k, b) not in self._reduced:
            self._reduced[(k, b)] = self._finish(list(local))
        return self._reduced[(k, b)]

    def field(self) -> list[list[Tensor]]:
        """The game's vector field ξ = (∇_{θ_i} f_i)_i (with graph in exact mode)."""
        for i in range(len(self.players)):
            self.prepare(i, [i])
        return [self.grad(i, i) for i in range(len(self.players))]

    # ------------------------------------------------------------------ mixed products
    def mixed(self, k: int, a: int, b: int, v: Sequence[Tensor]) -> list[Tensor]:
        """``D^{(k)}_{ab} v = ∇_{θ_a}(∇_{θ_b} f_k · v)``: v shaped like θ_b, result like θ_a."""
        return self.mixed_many([(k, a)], b, v)[0]

    def mixed_many(self, outs: Sequence[tuple[int, int]], b: int, v: Sequence[Tensor]) -> list[list[Tensor]]:
        """``[∇_{θ_a}(∇_{θ_b} f_k · v) for (k, a) in outs]``; counts one product per entry in exact
        mode, one per call in fd mode (one perturbation of θ_b serves every output)."""
        v = list(v)
        if self.mode == "exact":
            out = []
            through = self.pushforward.get(b)
            tangent: Tensor | None = None
            for k, a in outs:
                if through is not None and a != b:
                    if tangent is None:
                        tangent = through.jvp([t.detach() for t in v]).detach()
                    out.append(vjp([self._output_grad(k, b)], self.players[a], [tangent]))
                else:
                    out.append(vjp(self._local(k, b, graph=True), self.players[a], v))
                self.counts["hvp"] += 1
            return self._out(out)
        return self._out(self._fd({b: v}, outs))

    def _output_grad(self, k: int, b: int) -> Tensor:
        """∇_output f_k (with graph) for player b's pushforward output, taken once per step."""
        if (k, b) not in self._output_grads:
            out = self.pushforward[b].output
            loss = self.losses[k]
            grad = None
            if loss.requires_grad:
                grad = torch.autograd.grad(loss, out, retain_graph=True, create_graph=True, allow_unused=True)[0]
            self._output_grads[(k, b)] = torch.zeros_like(out) if grad is None else grad
            self.counts["grad"] += 1
        return self._output_grads[(k, b)]

    # ------------------------------------------------------------------ field products
    def field_vjp(self, v: Sequence[Sequence[Tensor]]) -> list[list[Tensor]]:
        """Jᵀv = ∇_θ Σ_i ⟨ξ_i, v_i⟩ = ∇_θ(½‖ξ‖²) when v = ξ. Exact: 1 product; fd: one per player."""
        n = len(self.players)
        if self.mode == "exact":
            for i in range(n):
                self.prepare(i, [i])
            xi = [self._local(i, i) for i in range(n)]
            flat_out = [t for i in range(n) for t in xi[i]]
            flat_v = [t for i in range(n) for t in v[i]]
            params = [p for i in range(n) for p in self.players[i]]
            res = vjp(flat_out, params, flat_v)
            self.counts["hvp"] += 1
            return self._out(self._split(res))
        total = [[torch.zeros_like(p) for p in self.players[j]] for j in range(n)]
        for i in range(n):
            parts = self._fd({i: list(v[i])}, [(i, j) for j in range(n)])
            for j in range(n):
                total[j] = [t + s for t, s in zip(total[j], parts[j], strict=True)]
        return self._out(total)

    def field_jvp(self, v: Sequence[Sequence[Tensor]]) -> list[list[Tensor]]:
        """Jv, the directional derivative of ξ along v: (Jv)_i = ∇_{θ_i}(∇_θ f_i · v).

        Exact: one product per player, each a backward pass through the graph of the FULL gradient
        ∇_θ f_i (taken once with ``create_graph``, over every player's parameters). Only second
        derivatives are involved: the "double-vjp" trick (differentiating u ↦ Jᵀu once more) needs
        third derivatives, and PyTorch's third derivative of transposed convolutions with
        ``output_padding`` fails (DCGAN generators). fd: 1 product (all players perturbed along v).
        """
        n = len(self.players)
        if self.mode != "exact":
            return self._out(self._fd({i: list(v[i]) for i in range(n)}, [(i, i) for i in range(n)]))
        for i in range(n):
            self.prepare(i, range(n))
        flat_v = [t.detach() for j in range(n) for t in v[j]]
        out = []
        for i in range(n):
            g_full = [t for j in range(n) for t in self._local(i, j, graph=True)]
            out.append(vjp(g_full, self.players[i], flat_v))
            self.counts["hvp"] += 1
        return self._out(out)

    def field_antisymmetric(self, v: Sequence[Sequence[Tensor]]) -> list[list[Tensor]]:
        """Aᵀv with A = ½(J − Jᵀ) the antisymmetric part of the game Jacobian, without Jᵀv or Jv:

            (Aᵀv)_i = ½ ∇_{θ_i} Σ_{j≠i} ⟨v_j, ∇_{θ_j}(f_j − f_i)⟩,

        because (Jᵀv)_i = ∇_{θ_i} Σ_j ⟨v_j, ∇_{θ_j} f_j⟩ and (Jv)_i = ∇_{θ_i} Σ_j ⟨v_j, ∇_{θ_j} f_i⟩ (symmetry of
        f_i's second derivatives), and the j = i terms cancel. Each player's part is one mixed product.
        Exact: n products, each a backward pass over θ_i only (needs ∇_{θ_j} f_i with graph for every pair:
        :meth:`prepare` with every block takes them in one pass per loss). fd: n products (θ_j ± ε v_j for each
        j, reading ∇_{θ_i} f_j and ∇_{θ_i} f_i for every i ≠ j), 2n closures.
        """
        n = len(self.players)
        if self.mode == "exact":
            for i in range(n):
                self.prepare(i, range(n))
            out = []
            for i in range(n):
                others = [j for j in range(n) if j != i]
                outputs = [t for j in others for t in (*self._local(j, j, graph=True), *self._local(i, j, graph=True))]
                weights = [w for j in others for w in (*(t.detach() for t in v[j]), *(-t.detach() for t in v[j]))]
                res = vjp(outputs, self.players[i], weights)
                self.counts["hvp"] += 1
                out.append([0.5 * r for r in res])
            return self._out(out)
        total = [[torch.zeros_like(p) for p in self.players[i]] for i in range(n)]
        for j in range(n):
            others = [i for i in range(n) if i != j]
            if not others:
                continue
            parts = self._fd({j: list(v[j])}, [pair for i in others for pair in ((j, i), (i, i))])
            for k, i in enumerate(others):
                cross, own = parts[2 * k], parts[2 * k + 1]
                total[i] = [t + 0.5 * (c - o) for t, c, o in zip(total[i], cross, own, strict=True)]
        return self._out(total)

    def field_vjp_jvp(self, v: Sequence[Sequence[Tensor]]) -> tuple[list[list[Tensor]], list[list[Tensor]]]:
        """(Jᵀv, Jv): 1 + n products in exact mode, n + 1 in fd mode."""
        if self.mode == "exact":
            n = len(self.players)
            for i in range(n):  # full gradients first: their own blocks serve Jᵀv too
                self.prepare(i, range(n))
        return self.field_vjp(v), self.field_jvp(v)

    # ------------------------------------------------------------------ helpers
    def _split(self, flat_list: Sequence[Tensor]) -> list[list[Tensor]]:
        out, offset = [], 0
        for params in self.players:
            out.append(list(flat_list[offset : offset + len(params)]))
            offset += len(params)
        return out

    @torch.no_grad()
    def _shift(self, blocks: dict[int, list[Tensor]], base: dict[int, list[Tensor]], eps: float) -> None:
        for b, v in blocks.items():
            for p, p0, d in zip(self.players[b], base[b], v, strict=True):
                p.copy_(p0 + eps * d)

    def _fd(self, perturb: dict[int, list[Tensor]], outs: Sequence[tuple[int, int]]) -> list[list[Tensor]]:
        """Central differences of ∇_{θ_a} f_k for (k, a) in ``outs`` along the perturbation
        θ_b ± ε v_b of the blocks in ``perturb``. One product (two closure calls)."""
        assert self.evaluate is not None
        vnorm = math.sqrt(sum(float(torch.sum(d.detach() ** 2)) for v in perturb.values() for d in v))
        zeros = [[torch.zeros_like(p) for p in self.players[a]] for _, a in outs]
        if vnorm == 0.0:
            return zeros
        base = {b: [p.detach().clone() for p in self.players[b]] for b in perturb}
        pnorm = math.sqrt(sum(float(torch.sum(p.double() ** 2)) for ps in base.values() for p in ps))
        eps = self.eps_rel * (1.0 + pnorm) / vnorm
        vs = {b: [d.detach() for d in v] for b, v in perturb.items()}
        results = []
        self._perturbed = True
        try:
            for sign in (1.0, -1.0):
                self._shift(vs, base, sign * eps)
                losses = list(self.evaluate())
                results.append(self._grads_at(losses, outs))
        finally:
            self._shift(vs, base, 0.0)
        self.counts["hvp"] += 1
        return [
            [(gp - gm) / (2 * eps) for gp, gm in zip(plus, minus, strict=True)]
            for plus, minus in zip(*results, strict=True)
        ]

    def _grads_at(self, losses: Sequence[Tensor], outs: Sequence[tuple[int, int]]) -> list[list[Tensor]]:
        by_loss: dict[int, list[int]] = {}
        for k, a in outs:
            by_loss.setdefault(k, [])
            if a not in by_loss[k]:
                by_loss[k].append(a)
        got: dict[tuple[int, int], list[Tensor]] = {}
        for k, blocks in by_loss.items():
            params = [p for a in blocks for p in self.players[a]]
            if losses[k].requires_grad:
                res = torch.autograd.grad(losses[k], params, retain_graph=True, allow_unused=True)
            else:
                res = (None,) * len(params)
            res = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, res, strict=True)]
            offset = 0
            for a in blocks:
                n = len(self.players[a])
                got[(k, a)] = res[offset : offset + n]
                offset += n
        return [got[(k, a)] for k, a in outs]


# ----------------------------------------------------------------------------- solvers
def _flat_problem(matvec: MatVec, b: Vector, x0: Vector | None):
    """Wrap a list-valued problem as a flat one; return (matvec, b, x0, to_output)."""
    if isinstance(b, Tensor):
        return matvec, b, x0, (lambda x: x)
    like = list(b)
    fb = flatten(like)

    def mv(v: Tensor) -> Tensor:
        return flatten(matvec(unflatten(v, like)))

    fx0 = flatten(list(x0)) if x0 is not None else None
    return mv, fb, fx0, (lambda x: unflatten(x, like))


def _threshold(bnorm: float, tol: float, atol: float) -> float:
    return max(tol * bnorm, atol)


def warm_scale(b: Tensor, ax0: Tensor) -> float:
    """The multiple c of a warm start x0 minimising ‖b − c·A x0‖: ⟨b, A x0⟩ / ‖A x0‖² (0 if A x0 = 0).

    Starting from c·x0 instead of x0 costs nothing once A x0 is known, and the initial residual is then
    never larger than b's (a cold start's, c = 0) nor than x0's own (c = 1)."""
    den = float(torch.dot(ax0, ax0))
    return float(torch.dot(b, ax0)) / den if den > 0.0 else 0.0


def _initial_residual(
    mv: Callable[[Tensor], Tensor], bf: Tensor, x0f: Tensor | None, scale: bool = False
) -> tuple[Tensor, Tensor, int]:
    """Start point, residual b − A x0 and the matvecs spent on it (none for a zero or absent warm start);
    ``scale``: start from the best multiple of x0 (:func:`warm_scale`)."""
    if x0f is None or not bool(torch.any(x0f != 0)):
        return torch.zeros_like(bf), bf.clone(), 0
    x = x0f.detach().clone().to(bf)
    ax = mv(x)
    if scale:
        c = warm_scale(bf, ax)
        x, ax = c * x, c * ax
    return x, bf - ax, 1


def _krylov_start(
    mv: Callable[[Tensor], Tensor], bf: Tensor, x0f: Tensor | None, r0: Any, side: Any, side0: Tensor | None,
    name: str,
) -> tuple[Tensor, Tensor, int, Tensor | None]:
    """``(x, r, matvecs, L·x)`` to start CG/CR from: the caller's initial residual ``r0`` if given (no
    operator work), else r = b − A x0; L·x is ``side0`` for a warm start with ``side`` (None: zero)."""
    if r0 is not None:
        r = (flatten(list(r0)) if not isinstance(r0, Tensor) else r0).detach().to(bf)
        warm = x0f is not None and bool(torch.any(x0f != 0))
        x, matvecs = (x0f.detach().clone().to(bf) if warm else torch.zeros_like(bf)), 0
    else:
        x, r, matvecs = _initial_residual(mv, bf, x0f)
        warm = matvecs > 0
    if side is not None and warm and side0 is None:
        raise ValueError(f"{name}: a warm start with side() needs side0 = L·x0")
    return x, r, matvecs, (side0 if (side is not None and warm) else None)


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

    Stops when ‖b − Ax‖ ≤ max(tol·‖b‖, atol) (norms, not squared norms) or after ``max_iter``
    iterations (default: the dimension). A warm start ``x0`` costs one extra ``matvec`` for the
    initial residual, unless the caller passes that residual ``r0 = b − A x0`` (flat, like ``b``
    flattened; with ``x0`` absent or zero, r0 is b). Returns ``(x, iterations)`` where iterations
    counts the ``matvec`` calls after the initial residual; ``info`` (if given) receives
    ``residual``, ``threshold``, ``converged`` and ``matvecs``. Works on flat tensors or on lists of
    tensors (then ``x`` is a list too).

    ``side``: a by-product of ``matvec`` that is LINEAR in its argument — ``side()`` returns L·v for
    the v of the latest ``matvec`` call (e.g. an intermediate product of a factored operator). CG
    then keeps L·x up to date along with x (L·x_{k+1} = L·x_k + α_k L·p_k, no extra operator work)
    and returns it in ``info["side"]``; ``side0`` is L·x0 (needed for a non-zero warm start; zero
    otherwise). In floating point the update drifts from a fresh L·x by rounding only (≈ k·eps).
    """
    mv, bf, x0f, out = _flat_problem(matvec, b, x0)
    n = bf.numel()
    max_iter = n if max_iter is None else int(max_iter)
    x, r, matvecs, lx = _krylov_start(mv, bf, x0f, r0, side, side0, "cg")
    thr = _threshold(float(torch.linalg.vector_norm(bf)), tol, atol)
    rs = torch.dot(r, r)
    res = math.sqrt(float(rs))
    it = 0
    if res > thr:
        p = r.clone()
        while it < max_iter:
            ap = mv(p)
            matvecs += 1
            it += 1
            pap = torch.dot(p, ap)
            if float(pap) <= 0.0:  # not positive definite along p (or breakdown): stop here
                break
            alpha = rs / pap
            x = x + alpha * p
            if side is not None:
                lp = side()
                lx = alpha * lp if lx is None else lx + alpha * lp
            r = r - alpha * ap
            rs_new = torch.dot(r, r)
            res = math.sqrt(float(rs_new))
            if res <= thr:
                break
            p = r + (rs_new / rs) * p
            rs = rs_new
    if info is not None:
        info.update(residual=res, threshold=thr, converged=res <= thr, matvecs=matvecs, iterations=it)
        if side is not None:
            info["side"] = lx
    return out(x), it


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
) -> tuple[Any, int]:
    """Conjugate residuals (Stiefel 1955; Saad, "Iterative Methods for Sparse Linear Systems",
    Alg. 6.20) for A x = b with A symmetric positive definite: the iterate minimising the residual
    NORM over the Krylov space (as MINRES), where CG minimises the A-norm of the error. With the
    residual-norm stopping rule ‖b − Ax‖ ≤ max(tol·‖b‖, atol) it never needs more operator
    applications than CG in exact arithmetic, and the residual decreases monotonically. One
    ``matvec`` per iteration (on the residual; A·p follows by recurrence), two more vectors kept.
    Same arguments and results as :func:`cg` (``side`` tracked along the same recurrences).
    """
    mv, bf, x0f, out = _flat_problem(matvec, b, x0)
    n = bf.numel()
    max_iter = n if max_iter is None else int(max_iter)
    x, r, matvecs, lx = _krylov_start(mv, bf, x0f, r0, side, side0, "cr")
    thr = _threshold(float(torch.linalg.vector_norm(bf)), tol, atol)
    res = float(torch.linalg.vector_norm(r))
    it = 0
    if res > thr and max_iter > 0:
        ar = mv(r)
        matvecs += 1
        it += 1
        lp = side() if side is not None else None
        p, ap = r.clone(), ar
        rar = torch.dot(r, ar)
        while True:
            apap = torch.dot(ap, ap)
            if float(rar) <= 0.0 or float(apap) <= 0.0:  # not positive definite (or breakdown)
                break
            alpha = rar / apap
            x = x + alpha * p
            if lp is not None:
                lx = alpha * lp if lx is None else lx + alpha * lp
            r = r - alpha * ap
            res = float(torch.linalg.vector_norm(r))
            if res <= thr or it >= max_iter:
                break
            ar = mv(r)
            matvecs += 1
            it += 1
            rar_new = torch.dot(r, ar)
            beta = rar_new / rar
            p = r + beta * p
            ap = ar + beta * ap
            if lp is not None:
                lp = side() + beta * lp
            rar = rar_new
    if info is not None:
        info.update(residual=res, threshold=thr, converged=res <= thr, matvecs=matvecs, iterations=it)
        if side is not None:
            info["side"] = lx
    return out(x), it


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
    (kept in float64). Stops when the residual norm (the Givens estimate of ‖b − Ax‖) is
    ≤ max(tol·‖b‖, atol), or after ``max_iter`` Arnoldi steps (default: the dimension). Every
    restart — and a non-zero warm start ``x0`` — costs one extra ``matvec`` for the explicit
    residual. Returns ``(x, iterations)`` with iterations the Arnoldi ``matvec`` calls; ``info`` as
    for :func:`cg`. ``scale_warm``: start from the best multiple of ``x0`` (:func:`warm_scale`, free).
    """
    mv, bf, x0f, out = _flat_problem(matvec, b, x0)
    n = bf.numel()
    max_iter = n if max_iter is None else int(max_iter)
    m = max(1, int(restart))
    thr = _threshold(float(torch.linalg.vector_norm(bf)), tol, atol)
    x, r, matvecs = _initial_residual(mv, bf, x0f, scale_warm)
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
            w = mv(basis[j])
            matvecs += 1
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
        r = bf - mv(x)  # restart from the true residual
        matvecs += 1
        res = float(torch.linalg.vector_norm(r))
    if info is not None:
        info.update(residual=res, threshold=thr, converged=res <= thr, matvecs=matvecs, iterations=total)
    return out(x), total
