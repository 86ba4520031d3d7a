"""Lookahead around any game optimizer (Zhang, Lucas, Hinton & Ba 2019, "Lookahead optimizer: k steps
forward, 1 step back"; Chavdarova, Pagliardini, Stich, Fleuret & Jaggi 2021, "Taming GANs with
Lookahead–Minmax")."""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from .base import OPTIMIZERS, Closure, GameOptimizer, as_param_list, build


@OPTIMIZERS.register("lookahead")
class Lookahead(GameOptimizer):
    """Lookahead–minmax: k steps of an inner game optimizer, then one step back towards the slow weights.

    With fast weights θ (the players' parameters, moved by the inner optimizer) and slow weights φ::

        θ_{t,0} = φ_t;   θ_{t,j+1} = inner step from θ_{t,j}   (j = 0 … k−1)
        φ_{t+1} = φ_t + α (θ_{t,k} − φ_t);   θ_{t+1,0} = φ_{t+1}

    for all players *jointly* (Chavdarova et al. 2021, Alg. 1). The optimizer's registered
    ``buffers`` (BatchNorm running statistics) get the same treatment — slow copies interpolated with
    the same α and copied back into the modules — so the statistics match the weights they are used
    with; integer buffers (``num_batches_tracked``) are not interpolated and keep their fast value.

    Hyper-parameters (game-level): ``inner`` (a registered optimizer name, default ``adam``; not
    ``lookahead``), ``k`` (inner steps per synchronisation, default 5), ``alpha`` (slow step, in
    (0, 1], default 0.5). Every other hyper-parameter goes to the inner optimizer (so ``lr``,
    ``scheme``, ``base``, ``max_grad_norm``, ... are the inner method's, and may be per player).

    The counter counts :meth:`step` calls, whatever ``players`` they update; with ``n_critic``-style
    schedules choose k accordingly. The slow weights are taken from the parameters at the start of
    each cycle, so changes made to the parameters between cycles (loading weights, weight clipping)
    are respected. The inner optimizer's state (moments, past gradients) is kept across
    synchronisations. ``hp``, ``counts`` and ``last_grad_norms`` are the inner optimizer's (shared
    objects, so a learning-rate schedule that edits ``hp[i]["lr"]`` acts on the inner method).

    ``state_dict()`` holds the slow weights and buffers, the counter and, under ``"inner"``, the
    inner optimizer's complete state.

    The wrapper is the one place that reaches into the optimizer it wraps: :meth:`configure` forwards the
    collaborators (``reduce``, ``scaler``) to it, and the declared needs (``wants_pushforward``,
    ``requires_double_backward``, ``wants_independent_batches``) and the log's diagnostics (``last_stats``,
    ``last_layer_norms``) are the inner optimizer's.
    """

    defaults: dict[str, Any] = {"inner": "adam", "k": 5, "alpha": 0.5}
    game_level = frozenset(defaults)

    def __init__(
        self,
        players,
        *,
        buffers=(),
        inner: str = "adam",
        k: int = 5,
        alpha: float = 0.5,
        **inner_hyper_parameters: Any,
    ) -> None:
        if not isinstance(inner, str) or inner not in OPTIMIZERS:
            raise ConfigError(
                f"optim.inner: unknown optimizer {inner!r}; valid: "
                f"{', '.join(n for n in OPTIMIZERS.names() if n != 'lookahead')}"
            )
        if OPTIMIZERS.get(inner) is Lookahead:
            raise ConfigError("optim.inner: lookahead cannot wrap lookahead")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"optim.k: expected a positive integer, got {k!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 < alpha <= 1:
            raise ConfigError(f"optim.alpha: expected a number in (0, 1], got {alpha!r}")
        # materialise once: generators (module.parameters()) can be consumed only once
        players = [as_param_list(p) for p in players]
        buffers = list(buffers)
        self.inner: GameOptimizer = build(inner, players, buffers=buffers, **inner_hyper_parameters)
        super().__init__(players, buffers=buffers, inner=inner, k=k, alpha=float(alpha))
        self.state = {"counter": 0}
        self._share_with_inner()

    def _share_with_inner(self) -> None:
        self.hp = self.inner.hp
        self.counts = self.inner.counts
        self.last_grad_norms = self.inner.last_grad_norms
        self.last_layer_norms = self.inner.last_layer_norms  # per-layer gradient health of the log
        self.last_stats = self.inner.last_stats  # zeroth-order forward passes and cosines

    # ------------------------------------------------------------------ collaborators and needs
    def configure(self, **collaborators: Any) -> None:
        super().configure(**collaborators)
        self.inner.configure(**collaborators)

    @property
    def wants_pushforward(self) -> bool:  # type: ignore[override]
        return self.inner.wants_pushforward

    @property
    def requires_double_backward(self) -> bool:  # type: ignore[override]
        return self.inner.requires_double_backward

    @property
    def wants_independent_batches(self) -> bool:  # type: ignore[override]
        return self.inner.wants_independent_batches

    # ------------------------------------------------------------------ public contract
    def step(self, closure: Closure, players: list[int] | None = None) -> list[float]:
        if self.state["counter"] == 0:
            self._start_cycle()
        losses = self.inner.step(closure, players)
        self.last_losses = losses
        self.last_step_skipped = self.inner.last_step_skipped
        if self.last_step_skipped:  # loss scaling met inf/NaN: the inner step was undone, so is this one
            return losses
        self.step_count += 1
        self.state["counter"] += 1
        if self.state["counter"] >= self.shared["k"]:
            self._synchronise()
            self.state["counter"] = 0
        return losses

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["inner"] = self.inner.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "inner" not in state_dict:
            raise ConfigError("optimizer state for Lookahead lacks the inner optimizer's state")
        super().load_state_dict(state_dict)
        self.inner.load_state_dict(state_dict["inner"])
        self._share_with_inner()

    # ------------------------------------------------------------------ slow weights
    def _start_cycle(self) -> None:
        self.state["slow"] = [self.snapshot(i) for i in range(len(self.players))]
        self.state["slow_buffers"] = [b.detach().clone() for b in self.buffers]

    @torch.no_grad()
    def _synchronise(self) -> None:
        """φ ← φ + α(θ − φ), θ ← φ for every player and every floating-point buffer."""
        alpha = self.shared["alpha"]
        for i, slow in enumerate(self.state["slow"]):
            self._interpolate(slow, self.players[i], alpha)
        floating = [
            (s, b)
            for s, b in zip(self.state["slow_buffers"], self.buffers, strict=True)
            if b.is_floating_point() or b.is_complex()
        ]
        if floating:
            self._interpolate([s for s, _ in floating], [b for _, b in floating], alpha)

    @staticmethod
    def _interpolate(slow: list[Tensor], fast: list[Tensor], alpha: float) -> None:
        if not slow:
            return
        difference = torch._foreach_sub([f.detach() for f in fast], slow)
        torch._foreach_add_(slow, difference, alpha=alpha)
        torch._foreach_copy_([f.detach() for f in fast], slow)
