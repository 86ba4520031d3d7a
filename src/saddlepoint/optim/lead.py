"""LEAD, Least Action Dynamics (Askari Hemmat, Mitra, Lajoie & Mitliagkas, TMLR 2023, "LEAD: Min-max
optimization from a physical perspective", Algorithm 1): heavy-ball momentum plus a coupling term that makes each
player react to the other's last move."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .. import checks
from .base import OPTIMIZERS, Closure
from .derivatives import GameDerivatives
from .rules import Gradient
from .second_order import FieldMethod

__all__ = ["LEAD"]


@OPTIMIZERS.register("lead")
class LEAD(FieldMethod):
    """LEAD for n players, player i minimising f_i, with Δθ_j = θ_j^k − θ_j^{k−1} the last move of player j:

        θ_i^{k+1} = θ_i^k + β Δθ_i − η ∇_{θ_i} f_i(θ^k) − α c_i,   c_i = ∇_{θ_i} Σ_{j≠i} ⟨∇_{θ_j} f_i(θ^k), Δθ_j⟩,

    i.e. the base rule (heavy ball, ``base: momentum``, ``momentum`` β) applied to g_i + (α/η) c_i; with f = f(x, y)
    zero-sum (x minimises, y maximises) it is the paper's x ← x + βΔx − η∇_x f − α∇²_{xy}f Δy,
    y ← y + βΔy + η∇_y f + α∇²_{yx}f Δx. The 1/η is there only for bases linear in the gradient (sgd, momentum,
    nesterov: ``UpdateRule.linear_in_gradient``), whose step −η(g + (α/η)c) is the paper's. An adaptive base (adam,
    rmsprop, signsgd) normalises its input, so it receives g_i + α c_i, as in the authors' GAN code (Adam fed the
    gradient plus 0.6 × the coupling product, github.com/ReyhaneAskari/Least_action_dynamics_minmax, ``LSD_Adam``);
    dividing by η there would weight the coupling 1/η times theirs. The first step has Δ = 0 (plain gradient step).

    ``coupling``:

    * ``exact`` (default): c_i as mixed second-derivative products (:mod:`.derivatives`, ``hvp`` exact or fd),
      n − 1 per player;
    * ``difference``: c_i ≈ ∇_{θ_i} f_i(θ^k) − ∇_{θ_i} f_i(θ^{k−1}), the difference of the player's gradients across
      iterations (stored; no second derivatives, so ``optim.grad: zo`` works too). It equals
      ∇²_{θ_iθ_j} f_i Δθ_j + ∇²_{θ_iθ_i} f_i Δθ_i + O(‖Δθ‖²): the coupling term plus the player's own curvature along
      its own move. Exact on bilinear games (no own curvature); in general it makes LEAD an optimistic heavy ball
      (the optimistic correction α(g_k − g_{k−1}) of Daskalakis et al. 2018 with momentum).

    Hyper-parameters: ``lr`` η (0.01), ``momentum`` β (0.9, the heavy-ball rule's), ``coupling_alpha`` α (0.5),
    ``coupling``, ``base`` (default ``momentum``), ``hvp``, ``fd_eps``, ``max_grad_norm``.
    Cost per step: exact, 1 closure, n gradients with graph (each loss with respect to all players), n(n − 1)
    mixed products (fd: n(n − 1) products, 2 closures each); difference, 1 closure and n gradients. Players move
    simultaneously.
    """

    extra_defaults = {"base": "momentum", "coupling_alpha": 0.5, "coupling": "exact"}
    game_level = frozenset({"hvp", "fd_eps", "forward_mode", "base", "coupling"})
    full_gradients = True

    def __init__(self, players, **hyper_parameters: Any) -> None:
        super().__init__(players, **hyper_parameters)
        checks.choice("optim.coupling", self.shared["coupling"], ("exact", "difference"))

    @property
    def requires_double_backward(self) -> bool:  # type: ignore[override]
        return self.shared["coupling"] == "exact" or self.rule_needs_hessian_diagonal

    def _moves(self) -> list[list[Tensor] | None]:
        """Δθ_j = θ_j − θ_j^{previous}, None before a player's first move."""
        out: list[list[Tensor] | None] = []
        for j, params in enumerate(self.players):
            previous = self.player_state(j).get("previous")
            out.append(None if previous is None else [p.detach() - q for p, q in zip(params, previous, strict=True)])
        return out

    def _step(self, evaluate: Closure, active: list[int]) -> None:
        moves = self._moves()
        n = len(self.players)
        grads: dict[int, list[Tensor]] = {}
        coupling: dict[int, list[Tensor] | None] = {}
        diag: dict[int, list[Tensor] | None] = {i: None for i in active}
        if self.shared["coupling"] == "exact":
            losses = self.first_evaluation(evaluate)
            d = self.derivatives(evaluate, losses)
            for i in active:  # every gradient before any (fd) product; one backward per loss
                d.prepare(i, range(n) if d.mode == "exact" else [i])
            grads = self.own_gradients(d, active)
            for i in active:
                coupling[i] = self._exact_coupling(d, i, moves)
                if self.rule_needs_hessian_diagonal:
                    diag[i] = self.hessian_diagonal(d, i)
        else:
            losses = evaluate()
            for i in active:
                grads[i] = self.gradient(losses, i)
                diag[i] = getattr(grads[i], "hessian_diagonal", None)
            del losses
            for i in active:
                state = self.player_state(i)
                past = state.get("past_grad")
                coupling[i] = None if past is None else [g - p for g, p in zip(grads[i], past, strict=True)]
                state["past_grad"] = [g.detach().clone() for g in grads[i]]
        per_lr = self.transform.linear_in_gradient
        for i in active:
            weight = self.hp[i]["coupling_alpha"] / (self.hp[i]["lr"] if per_lr else 1.0)
            c = coupling[i]
            field = list(grads[i]) if c is None else [g + weight * x for g, x in zip(grads[i], c, strict=True)]
            state = self.player_state(i)
            state["previous"] = self.snapshot(i)
            delta = self.transform.update(Gradient(field, hessian_diagonal=diag[i]), self.players[i], state,
                                          self.hp[i])
            self.add_to_params(i, delta)

    def _exact_coupling(self, d: GameDerivatives, i: int, moves: list[list[Tensor] | None]) -> list[Tensor] | None:
        """c_i = Σ_{j≠i} ∇_{θ_i}⟨∇_{θ_j} f_i, Δθ_j⟩ (one mixed product per opponent that has moved)."""
        total: list[Tensor] | None = None
        for j, move in enumerate(moves):
            if j == i or move is None:
                continue
            product = [t.detach() for t in d.mixed(i, i, j, move)]
            total = product if total is None else [a + b for a, b in zip(total, product, strict=True)]
        return total
