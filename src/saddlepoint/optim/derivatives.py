"""Derivatives of a game's losses for the second-order game optimizers, on lists of tensors and flat vectors.

* **Flat vectors**: :func:`flatten` / :func:`unflatten` between a list of parameter-shaped tensors and
  one 1-D tensor; :func:`dot`; :func:`vjp`.
* **Second-derivative products** of the players' losses at one point, :class:`GameDerivatives`:
  the mixed product ``D^{(k)}_{ab} v = ∇_{θ_a}(∇_{θ_b} f_k · v)`` (with ``a = b`` a Hessian-vector
  product; with ``k = a`` the block ``J_{ab} v`` of the game Jacobian J = ∂ξ/∂θ of the field
  ξ = (∇_{θ_i} f_i)_i) and the whole-field products ``Jᵀv`` and ``Jv``. Only second derivatives
  are ever taken (a backward pass through a gradient's graph).

  - ``mode="exact"``: double backpropagation through gradients taken once with ``create_graph=True``
    and cached, so every further product of the step reuses the same graph (the main saving: a
    product then costs one backward pass instead of a fresh Hessian-vector product's forward and two
    backward passes; measured costs: ``benchmarks/bench_optim.py``).
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
* **Collaborators** come from the optimizer that takes the step (``GameOptimizer.reduce`` and its
  active ``scaler``), passed to :class:`GameDerivatives` explicitly; both default to None (one process,
  no loss scaling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .amp import LossScaler

__all__ = [
    "GameDerivatives",
    "Pushforward",
    "Reduce",
    "default_fd_eps",
    "dot",
    "flatten",
    "hutchinson_diagonal",
    "rademacher",
    "straight_through",
    "unflatten",
    "vjp",
]


#: averages a list of tensors over data-parallel workers (returns new tensors); None: one process
Reduce = Callable[[Sequence[Tensor]], list[Tensor]]


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
    Measured costs of both ways: ``benchmarks/bench_optim.py``, part ``dyx``.
    """

    output: Tensor
    jvp: Callable[[Sequence[Tensor]], Tensor]


class GameDerivatives:
    """Gradients and second-derivative products of a game's losses at the current point.

    ``players[i]`` is player i's parameter list; ``losses`` are the losses evaluated at the current
    point (with their graph). ``evaluate()`` re-evaluates the losses at the current parameter values
    (needed by ``mode="fd"`` only). One instance serves one optimizer step: cached gradients belong
    to the point at which ``losses`` were computed. ``reduce`` and ``scaler`` are the stepping optimizer's
    collaborators (``opt.reduce``, ``opt.active_scaler``): every value handed out is unscaled, averaged over
    the workers and checked for inf/NaN.
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
        reduce: Reduce | None = None,
        scaler: LossScaler | None = None,
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
        # data parallel: gradients and products are averaged over the workers by ``reduce`` (the
        # optimizer's); the cached gradients keep their LOCAL graph (products are local backward passes,
        # averaged afterwards)
        self.reduce: Reduce | None = reduce
        self._reduced: dict[tuple[int, int], list[Tensor]] = {}
        # loss scaling (float16 autocast): the losses are scaled, so are the cached gradients and every
        # product; values are unscaled on the way out, after the average, and checked for inf/NaN
        # (:class:`~saddlepoint.optim.amp.NonFiniteGradients` aborts the step)
        self.scaler: LossScaler | None = scaler
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


# ----------------------------------------------------------------------------- Hutchinson's diagonal
def rademacher(like: Sequence[Tensor], generator: torch.Generator) -> list[Tensor]:
    """Independent ±1 entries shaped like ``like`` (drawn on the CPU from ``generator``, so every data-parallel
    worker with the same seed draws the same vector, then moved to each tensor's device and dtype)."""
    return [(torch.randint(0, 2, t.shape, generator=generator) * 2 - 1).to(t.device, t.dtype) for t in like]


def hutchinson_diagonal(d: GameDerivatives, i: int, samples: int, generator: torch.Generator) -> list[Tensor]:
    """Hutchinson's estimate of diag ∇²_{θ_i} f_i (Bekas, Kokiopoulou & Saad 2007; AdaHessian, Yao et al. 2021,
    eq. 7): (1/s) Σ_k z_k ⊙ H z_k with Rademacher z_k, unbiased because E[z zᵀ] = I; the variance of entry j is
    Σ_{l≠j} H_jl² / s. One Hessian-vector product of player i's own loss per sample (``d.mixed(i, i, i, z)``:
    exact or finite differences as ``d`` is set up; averaged over the workers)."""
    total: list[Tensor] | None = None
    for _ in range(samples):
        z = rademacher(d.players[i], generator)
        hz = d.mixed(i, i, i, z)
        est = [a * b.detach() for a, b in zip(z, hz, strict=True)]
        total = est if total is None else [t + e for t, e in zip(total, est, strict=True)]
    assert total is not None
    return [t / samples for t in total] if samples > 1 else total
