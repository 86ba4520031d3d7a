"""Hamiltonian gradient descent: descend the squared norm of the game's vector field."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .. import checks
from .base import OPTIMIZERS, Closure
from .rules import Gradient
from .second_order import FieldMethod

__all__ = ["Hamiltonian"]


@OPTIMIZERS.register("hamiltonian")
class Hamiltonian(FieldMethod):
    """Hamiltonian gradient descent (Balduzzi et al. 2018, §3.1; Abernethy, Lai & Wibisono 2019, "Last-iterate
    convergence rates for min-max optimization", eq. 4): minimise H = ½‖ξ‖², ξ = (∇_{θ_i} f_i)_i, by the base rule
    applied to ∇H = Jᵀξ (J = ∂ξ/∂θ); with ``base: sgd``, θ ← θ − η Jᵀξ. Consensus optimization without its ξ term.
    On the bilinear game f = xᵀAy (x minimises, y maximises) ξ = (Ay, −Aᵀx) and Jᵀξ = (AAᵀx, AᵀAy), so
    x_t = (I − ηAAᵀ)ᵗ x₀ and y_t = (I − ηAᵀA)ᵗ y₀: linear convergence whatever the rotation.

    **Stochastic form** (Loizou, Berard, Jolicoeur-Martineau, Vincent, Lacoste-Julien & Mitliagkas, ICML 2020,
    "Stochastic Hamiltonian gradient methods for smooth games", eq. 8): Jᵀξ on one minibatch is a biased estimate
    of ∇H (the product of two estimates on the same samples); with two independent minibatches a and b,
    ½(J_aᵀ ξ_b + J_bᵀ ξ_a) is unbiased. ``step((closure_a, closure_b))`` takes that form: each closure gets the
    framework's replay of its own randomness (the second one's starts where the first evaluation left the random
    stream, so dropout masks differ too). ``step(closure)`` takes the deterministic form (analytic games). In GAN
    training the trainer draws two batches (data and noise) per step and passes both closures; with
    ``independent_batches: false`` it passes one (the biased single-batch form, half the data per step).

    Hyper-parameters: ``lr`` (1e-2), ``base`` (sgd | momentum | adam | ...) with the rules' hyper-parameters,
    ``independent_batches`` (true), ``hvp``, ``fd_eps``, ``max_grad_norm``. Cost per step: deterministic,
    1 closure, n gradients with graph, 1 product Jᵀξ (fd: n products, 2n closures); two minibatches, 2 closures,
    2n gradients, 2 products.
    """

    extra_defaults = {"independent_batches": True}
    game_level = FieldMethod.game_level | {"independent_batches"}

    def __init__(self, players, **hyper_parameters: Any) -> None:
        super().__init__(players, **hyper_parameters)
        self.shared["independent_batches"] = checks.boolean("optim.independent_batches",
                                                            self.shared["independent_batches"])

    @property
    def wants_independent_batches(self) -> bool:  # type: ignore[override]
        """Whether the trainer passes two closures on independent minibatches (``independent_batches``, true)."""
        return bool(self.shared["independent_batches"])

    def adjusted_field(self, d, xi):
        return d.field_vjp(xi)

    def _step(self, evaluate: Closure, active: list[int]) -> None:
        if not self.has_second_batch:
            super()._step(evaluate, active)
            return
        n = len(self.players)
        losses_a = self.first_evaluation(evaluate)
        evaluate_b = self.second_evaluation()
        losses_b = list(evaluate_b())
        if self.buffers and self.shared["hvp"] == "fd":  # the buffers keep the update of both evaluations
            self._buffers_after_first = [b.detach().clone() for b in self.buffers]
        d_a, d_b = self.derivatives(evaluate, losses_a), self.derivatives(evaluate_b, losses_b)
        for d in (d_a, d_b):  # every gradient before any (fd) product
            for i in range(n):
                d.prepare(i, [i])
        g = self.own_gradients(d_a, list(range(n)))
        xi_a = [g[i] for i in range(n)]
        xi_b = [[t.detach() for t in d_b.grad(i, i)] for i in range(n)]
        ja_xb, jb_xa = d_a.field_vjp(xi_b), d_b.field_vjp(xi_a)
        for i in active:
            field: list[Tensor] = [0.5 * (u + w) for u, w in zip(ja_xb[i], jb_xa[i], strict=True)]
            if self.rule_needs_hessian_diagonal:
                field = Gradient(field, hessian_diagonal=self.hessian_diagonal(d_a, i))
            self.add_to_params(i, self.transform.update(field, self.players[i], self.player_state(i), self.hp[i]))
