"""Where a player's gradient comes from, for ``GameOptimizer.gradient`` (:mod:`saddlepoint.optim.base`):
zeroth-order estimates (``optim.grad: zo``, :mod:`.zeroth_order`) and Hutchinson's diagonal of the player's own
Hessian for update rules that ask for it (AdaHessian, :class:`~saddlepoint.optim.rules.Gradient`).

A mixin of the optimizer base class: it reads the optimizer's players, buffers, counters, collaborators and the
per-step evaluator that :meth:`~saddlepoint.optim.base.GameOptimizer.step` installs. The seeds of random directions
and Rademacher vectors mix the step count, the player and the estimate's index within the step
(:func:`~.zeroth_order.seed_for`): the same on every data-parallel worker and after a checkpoint round trip, and
nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .. import checks
from . import zeroth_order as zo
from .derivatives import GameDerivatives, hutchinson_diagonal

__all__ = ["HUTCHINSON_SEED", "GradientSources"]

#: mixed into the seed of Hutchinson's Rademacher vectors
HUTCHINSON_SEED = 0x4875


class GradientSources:
    """Zeroth-order gradients and Hutchinson's diagonal (mixed into :class:`~saddlepoint.optim.base.GameOptimizer`)."""

    players: list[list[Tensor]]
    buffers: list[Tensor]
    counts: dict[str, int]
    hp: list[dict[str, Any]]
    shared: dict[str, Any]
    zo: dict[str, Any]
    step_count: int
    last_stats: dict[str, float]
    _evaluate: Callable[[], Sequence[Tensor]] | None
    _estimates: int
    _epoch: int
    _epochs: dict[int, int]

    # provided by the optimizer base class
    reduce: Any
    active_scaler: Any

    def _finish(self, grads: list[Tensor]) -> list[Tensor]:
        raise NotImplementedError

    @property
    def rule_needs_hessian_diagonal(self) -> bool:
        """Whether the method's update rule (``self.transform``) asks for Hutchinson's diagonal with its gradients."""
        return bool(getattr(getattr(self, "transform", None), "needs_hessian_diagonal", False))

    def stats(self) -> dict[str, float]:
        """Diagnostics of the latest steps, for the log: with zeroth-order gradients ``zo_forward`` (closure
        evaluations of the last step's estimates) and ``zo_cosine_<i>`` (cosine between player i's estimate and its
        autograd gradient, the latest measured, every ``optim.zo.check_every`` steps)."""
        return dict(self.last_stats)

    # ------------------------------------------------------------------ bookkeeping
    def _current(self, losses: Sequence[Tensor]) -> Sequence[Tensor]:
        """``losses``, or a fresh evaluation at the same point when the parameters were moved in place and put
        back since ``losses`` were computed (zeroth-order or finite-difference evaluations): same values, a graph
        that can be differentiated."""
        if self._evaluate is None or self._epochs.get(id(losses), self._epoch) == self._epoch:
            return losses
        return self._evaluate()

    def _restore_buffers(self, saved: list[Tensor]) -> None:
        for buf, value in zip(self.buffers, saved, strict=True):
            buf.data.copy_(value)

    def _next_seed(self, base: int, i: int) -> int:
        seed = zo.seed_for(base, self.step_count, i, self._estimates)
        self._estimates += 1
        return seed

    # ------------------------------------------------------------------ zeroth order
    def _zeroth_order(self, losses: Sequence[Tensor], i: int) -> list[Tensor]:
        """Player i's zeroth-order estimate (of the scaled loss), its evaluations in ``counts["forward"]``."""
        if self._evaluate is None:
            raise RuntimeError("zeroth-order gradients are taken within step()")
        opts, evaluate = self.zo, self._evaluate
        f0 = float(losses[i].detach()) if opts["difference"] == "forward" else None
        seed = self._next_seed(opts["seed"], i)
        saved = [b.detach().clone() for b in self.buffers]
        try:
            grads, evaluations = zo.estimate(lambda: float(evaluate()[i].detach()), self.players[i], f0=f0,
                                             directions=opts["directions"], difference=opts["difference"],
                                             q=opts["q"], mu=opts["mu"], seed=seed)
        finally:
            self._epoch += 1
            self._restore_buffers(saved)
        self.counts["forward"] = self.counts.get("forward", 0) + evaluations
        return grads

    def _check_due(self) -> bool:
        every = self.zo["check_every"]
        return bool(every) and self.step_count % every == 0

    def _autograd_check(self, i: int) -> list[Tensor]:
        """Player i's backpropagated gradient at the current point, from a fresh evaluation (a diagnostic: not
        counted in ``counts["grad"]``), unscaled and averaged like the estimate it is compared with."""
        assert self._evaluate is not None
        params = self.players[i]
        grads = torch.autograd.grad(self._evaluate()[i], params, allow_unused=True)
        return self._finish([torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads)])

    # ------------------------------------------------------------------ curvature
    def hessian_diagonal(self, d: GameDerivatives, i: int) -> list[Tensor]:
        """Hutchinson's diagonal of player i's own Hessian from the step's derivatives ``d`` (``samples``
        Rademacher vectors, from player i's hyper-parameters; products as ``d`` takes them)."""
        samples = checks.integer("optim.samples", self.hp[i].get("samples", 1), low=1)
        generator = torch.Generator().manual_seed(self._next_seed(HUTCHINSON_SEED, i))
        return hutchinson_diagonal(d, i, int(samples), generator)  # type: ignore[arg-type]

    def _with_hessian_diagonal(self, losses: Sequence[Tensor], i: int) -> tuple[list[Tensor], list[Tensor]]:
        """Player i's gradient and Hutchinson's diagonal of its own Hessian at the point of ``losses`` (``hvp``:
        exact double backpropagation or finite differences of gradients)."""
        hp = {**self.shared, **self.hp[i]}
        mode = checks.choice("optim.hvp", hp.get("hvp", "exact"), ("exact", "fd"))
        d = GameDerivatives(self.players, losses, evaluate=self._evaluate, mode=mode, eps_rel=hp.get("fd_eps"),
                            counts=self.counts, reduce=self.reduce, scaler=self.active_scaler)
        saved = [b.detach().clone() for b in self.buffers]
        grads = [g.detach() for g in d.grad(i, i)]
        diag = self.hessian_diagonal(d, i)
        if mode == "fd":  # the products evaluated the closure at moved parameters
            self._epoch += 1
            self._restore_buffers(saved)
        return grads, diag
