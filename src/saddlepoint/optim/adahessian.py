"""AdaHessian: the update rule (a base of the other methods) and the optimizer of the same name.

The rule needs, with each gradient, Hutchinson's estimate of the diagonal of the player's own Hessian at the same
point and on the same batch. Methods provide it where they take the gradient:

* :meth:`GameOptimizer.gradient <saddlepoint.optim.base.GameOptimizer.gradient>` (the optimizer ``adahessian``,
  extragradient, extrapolation from the past, optimistic, lookahead's inner method, LEAD with ``coupling:
  difference``): the gradient is taken with its graph and one Hessian-vector product per Rademacher sample
  follows (``hvp: exact``), or two more closure evaluations per sample (``hvp: fd``); each extrapolation or update
  gradient brings its own diagonal, so the second moment sees the Hessian at every point the method evaluates;
* consensus, SGA, LEAD (``coupling: exact``) and Hamiltonian descent: from the step's
  :class:`~saddlepoint.optim.derivatives.GameDerivatives` at θ_t, products taken as the method's ``hvp`` says;
  the rule then preconditions the method's adjusted field (ξ + γJᵀξ, ξ + λAᵀξ, ...) with the diagonal of each
  player's own Hessian.

Cost per player and estimate: one gradient with its graph and ``samples`` Hessian-vector products (measured
against Adam in ``benchmarks/bench_optim.py``). Every method with this rule declares
``requires_double_backward``; zeroth-order gradients cannot serve it.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import checks
from ..errors import ConfigError
from .base import OPTIMIZERS, Closure
from .first_order import SchemeGame, check_scheme
from .rules import RULES, UpdateRule, spatial_average

__all__ = ["AdaHessian", "AdaHessianGDA"]


class AdaHessian(UpdateRule):
    """AdaHessian (Yao, Gholami, Shen, Mustafa, Keutzer & Mahoney, AAAI 2021, Alg. 1, eqs. 7-11): Adam with the
    squared gradient replaced by the squared Hessian diagonal of the player's own loss f_i,

        D_t = z ⊙ ∇²f_i z  (Hutchinson, Rademacher z: E[D_t] = diag ∇²f_i, eq. 7; ``samples`` vectors averaged),
        D⁽ˢ⁾_t = D_t averaged over each convolution kernel's spatial block (eq. 9; tensors of ≥ 3 dimensions,
                 over the dimensions after the first two; ``spatial_average: false`` keeps D_t),
        m_t = β₁m_{t−1} + (1−β₁)g_t,   v_t = β₂v_{t−1} + (1−β₂) D⁽ˢ⁾_t ⊙ D⁽ˢ⁾_t   (eq. 10),
        θ ← θ − η m̂_t / ((√v̂_t)^k + ε)   with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ), k the Hessian power (eq. 11).

    Hyper-parameters: ``lr`` η (0.15, the paper's), ``beta1`` (0.5: the project's Adam default for GANs, shared
    with the Adam rule; the paper uses 0.9), ``beta2`` (0.999), ``hessian_eps`` ε (1e-4, the paper's; it bounds
    the step where the curvature vanishes), ``hessian_power`` k ∈ [0, 1] (1), ``samples`` (1),
    ``spatial_average`` (true). The authors' released code averages |D| over the block instead (the square of the
    average differs); this follows eq. 9. A gradient without a diagonal (extrapolation from the past's stored
    gradient) moves m only.
    """

    defaults = {"lr": 0.15, "beta1": 0.5, "beta2": 0.999, "hessian_eps": 1e-4, "hessian_power": 1.0, "samples": 1,
                "spatial_average": True}
    needs_hessian_diagonal = True

    def update(self, grads, params, state, hp):
        diag = getattr(grads, "hessian_diagonal", None)
        if "m" not in state:
            state["m"] = [torch.zeros_like(p) for p in params]
            state["v"] = [torch.zeros_like(p) for p in params]
            state["t"], state["t_hessian"] = 0, 0
        if diag is None and state["t_hessian"] == 0:
            raise ConfigError("optim.base: adahessian needs Hutchinson's diagonal with each gradient, which this "
                              "method does not provide")
        power = checks.number("optim.hessian_power", hp["hessian_power"], low=0, high=1)
        b1, b2 = hp["beta1"], hp["beta2"]
        state["t"] += 1
        m, v = state["m"], state["v"]
        torch._foreach_mul_(m, b1)
        torch._foreach_add_(m, list(grads), alpha=1 - b1)
        if diag is not None:
            state["t_hessian"] += 1
            d = [spatial_average(x) for x in diag] if hp["spatial_average"] else list(diag)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, d, d, value=1 - b2)
        step = hp["lr"] / (1 - b1 ** state["t"])
        correction = (1 - b2 ** state["t_hessian"]) ** 0.5
        return [-step * a / ((s.sqrt() / correction) ** power + hp["hessian_eps"]) for a, s in zip(m, v)]


@OPTIMIZERS.register("adahessian")
class AdaHessianGDA(SchemeGame):
    """AdaHessian per player (:class:`AdaHessian`), each player on the Hessian diagonal of its own loss;
    ``scheme`` simultaneous or alternating (GAN training: alternating, D first, like the other first-order
    methods), ``hvp`` exact (double backpropagation) or fd (central differences of gradients, ``fd_eps``).

    Cost per player and step: 1 gradient with its graph + ``samples`` Hessian-vector products (fd: 2 closure
    evaluations per product instead)."""

    rule = "adahessian"
    #: fp16 is refused: the step divides by the curvature estimate, which is near zero in places, so float16
    #: rounding of the Hessian-vector products is amplified (docs/optimizers.md, AdaHessian)
    supports_loss_scaling = False
    transform: UpdateRule = AdaHessian()
    defaults: dict[str, Any] = {**SchemeGame.defaults, **AdaHessian.defaults, "hvp": "exact", "fd_eps": None,
                                "scheme": "simultaneous", "order": "reverse"}
    game_level = frozenset({"scheme", "order", "hvp", "fd_eps"})
    gan_scheme = "alternating"

    def __init__(self, players, **hyper_parameters: Any) -> None:
        super().__init__(players, **hyper_parameters)
        check_scheme(self.shared)
        checks.choice("optim.hvp", self.shared["hvp"], ("exact", "fd"))
        checks.number("optim.fd_eps", self.shared["fd_eps"], low=0, low_open=True, none=True)

    def _group_step(self, evaluate: Closure, group: list[int]) -> None:
        losses = evaluate()
        grads = {i: self.gradient(losses, i) for i in group}
        del losses
        for i in group:
            self.add_to_params(i, self.transform.update(grads[i], self.players[i], self.player_state(i), self.hp[i]))


# after the optimizer: the rule registry's listeners would otherwise make a plain first-order optimizer of it
RULES.register("adahessian")(AdaHessian)
