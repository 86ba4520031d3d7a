"""The game-optimizer contract shared by every method, first order to ACGD.

A game has ``n`` players; player ``i`` owns the parameter list ``players[i]`` and minimises
``losses[i]``, where ``losses = closure()`` is recomputed at the current parameters on every call.

What the framework guarantees (so that no method and no user has to think about it):

* **Same randomness within one step.** The torch RNG state (CPU and every initialised CUDA device) is
  captured when a step starts and restored before every further closure call of that step, so dropout
  masks and noise drawn inside the closure are identical across the calls (extrapolation, alternation,
  finite differences).
* **BatchNorm statistics updated once per step.** The registered ``buffers`` are restored to their
  values at the start of the step before every further closure call, so after the step they hold
  exactly one update (from the last evaluation).
* **Per-player hyper-parameters.** Every hyper-parameter accepts a scalar or one value per player.
* **Gradient-norm clipping** (``max_grad_norm``) per player, with the norms *before* clipping kept in
  :attr:`GameOptimizer.last_grad_norms` for logging.
* **Cost accounting** in :attr:`GameOptimizer.counts`: closure calls, per-player gradients and
  Hessian-vector / mixed products, so methods can be compared at an equal budget.
* **Complete state**: ``state_dict()`` holds every buffer a method keeps (moments, past gradients,
  extrapolation points, slow weights, warm starts); a round trip gives identical next steps.
* **Collaborators are injected** with :meth:`GameOptimizer.configure`: the data-parallel ``reduce`` and
  the loss ``scaler``; a wrapper (lookahead) forwards them to the optimizer it wraps. Methods hand both
  to the objects that take derivatives for them (:class:`~saddlepoint.optim.derivatives.GameDerivatives`).
* **Needs are declared** as attributes that training code reads without importing classes:
  :attr:`GameOptimizer.requires_double_backward` (second-derivative products through the closure's graph),
  :attr:`GameOptimizer.wants_pushforward` (a closure's declared pushforward is used) and, on the
  first-order family, ``gan_scheme`` (the scheme GAN training uses when none is set).
* **Where gradients come from** (``grad``, for the whole game): ``autograd`` (backpropagation) or ``zo``, zeroth-order
  estimates from loss values alone with the options ``zo`` (``optim.zo.q``, ...; :mod:`.zeroth_order`), for
  every method that takes its gradients with :meth:`GameOptimizer.gradient`; an update rule that asks for
  Hutchinson's diagonal of the player's Hessian (AdaHessian) gets it with the gradient there
  (:class:`~saddlepoint.optim.rules.Gradient`). :meth:`GameOptimizer.stats` holds the diagnostics to log
  (zeroth order: evaluations per step and, every ``optim.zo.check_every`` steps, the cosine with autograd).
* **Loss scaling** (float16 autocast): with a :class:`~saddlepoint.optim.amp.LossScaler` in
  :attr:`GameOptimizer.scaler` the closure's losses are scaled before differentiation, every gradient
  and second-derivative product is unscaled before a method sees it, and a step that meets a
  non-finite value is undone entirely (parameters, state, buffers) and reported in
  :attr:`GameOptimizer.last_step_skipped` (see :mod:`saddlepoint.optim.amp`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .. import checks
from ..errors import ConfigError
from ..registry import Registry
from . import zeroth_order
from .amp import LossScaler, NonFiniteGradients
from .derivatives import Reduce, straight_through
from .rules import Gradient
from .sources import GradientSources

Closure = Callable[[], Sequence[Tensor]]

OPTIMIZERS: Registry[type[GameOptimizer]] = Registry("optimizer")


def as_param_list(player: Iterable[Tensor] | nn.Module) -> list[Tensor]:
    """A player given as a module or an iterable of parameters → list of trainable tensors."""
    params = player.parameters() if isinstance(player, nn.Module) else player
    return [p for p in params if p.requires_grad]


class StepEvaluator:
    """Calls the closure any number of times within one step with identical randomness and buffers."""

    def __init__(self, closure: Closure, buffers: Sequence[Tensor], counts: dict[str, int]) -> None:
        self.closure = closure
        self.buffers = buffers
        self.counts = counts
        self.calls = 0
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.buffer_snapshot = [b.detach().clone() for b in buffers]

    def __call__(self) -> Sequence[Tensor]:
        if self.calls > 0:
            torch.set_rng_state(self.cpu_rng)
            if self.cuda_rng is not None:
                torch.cuda.set_rng_state_all(self.cuda_rng)
            # through ``.data``: the values go back without bumping the buffers' version counters, so a
            # graph kept from an earlier call (which saved them, e.g. BatchNorm's running statistics,
            # unused by its training-mode backward) stays usable
            for buf, saved in zip(self.buffers, self.buffer_snapshot):
                buf.data.copy_(saved)
        self.calls += 1
        self.counts["closure"] += 1
        losses = self.closure()
        # a Sequence is kept as it is: a lazy one computes a player's loss only when it is used
        losses = losses if isinstance(losses, Sequence) else list(losses)
        if self.calls == 1:
            self.first_losses = [float(loss.detach()) for loss in losses]  # evaluates every loss once
            self.cpu_rng_after = torch.get_rng_state()
            self.cuda_rng_after = torch.cuda.get_rng_state_all() if self.cuda_rng is not None else None
        return losses

    def finish(self) -> None:
        """Leave the random streams where one full evaluation leaves them, however many (and however
        lazy) the evaluations were: the step consumes randomness as a single evaluation would."""
        if self.calls > 1:
            torch.set_rng_state(self.cpu_rng_after)
            if self.cuda_rng_after is not None:
                torch.cuda.set_rng_state_all(self.cuda_rng_after)


class GameOptimizer(GradientSources):
    """Base class: holds players, per-player hyper-parameters, state and the step machinery.

    Subclasses implement :meth:`_step` (one update of the active players, calling ``evaluate()`` as
    often as the method needs) and keep everything they remember in ``self.state`` (plain containers
    of tensors and numbers), which :meth:`state_dict` saves.
    """

    #: hyper-parameters with their defaults; every one may be given per player (but ``grad`` and ``zo``, kept in
    #: :attr:`grad` and :attr:`zo`)
    defaults: dict[str, Any] = {"lr": 1e-3, "max_grad_norm": None, "grad": "autograd", "zo": {}}

    def __init__(
        self,
        players: Sequence[Iterable[Tensor] | nn.Module],
        *,
        buffers: Iterable[Tensor] = (),
        **hyper_parameters: Any,
    ) -> None:
        self.players: list[list[Tensor]] = [as_param_list(p) for p in players]
        if not self.players:
            raise ConfigError("optim: a game needs at least one player")
        self.buffers = list(buffers)
        n = len(self.players)
        hyper_parameters = nest_dotted(hyper_parameters)
        if self.rule_needs_hessian_diagonal and "hvp" not in self.defaults:  # e.g. extragradient, base adahessian
            self.defaults = {**self.defaults, "hvp": "exact", "fd_eps": None}
        unknown = set(hyper_parameters) - set(self.defaults)
        if unknown:
            raise ConfigError(
                f"optim: unknown hyper-parameter(s) {', '.join(sorted(unknown))} for "
                f"{type(self).__name__}; valid: {', '.join(sorted(self.defaults))}"
            )
        merged = {**self.defaults, **hyper_parameters}
        #: where gradients come from (``autograd`` | ``zo``) and the zeroth-order options (:mod:`.zeroth_order`)
        self.grad: str = checks.choice("optim.grad", merged.pop("grad", "autograd"), ("autograd", "zo"))  # type: ignore
        self.zo: dict[str, Any] = zeroth_order.zo_options(merged.pop("zo", None))
        self.hp: list[dict[str, Any]] = [{} for _ in range(n)]
        self.shared: dict[str, Any] = {}
        for key, value in merged.items():
            if key in self.game_level or key in ("hvp", "fd_eps"):
                self.shared[key] = check_hyper_parameter(key, value, self.defaults.get(key))
                continue
            values = per_player(value, n, f"optim.{key}")
            for i in range(n):
                self.hp[i][key] = check_hyper_parameter(key, values[i], self.defaults.get(key))
        self.state: dict[str, Any] = {}
        self.step_count = 0
        self.counts = {"closure": 0, "grad": 0, "hvp": 0}
        self.last_grad_norms: list[float] = [float("nan")] * n
        #: per player, the norm of each parameter tensor's gradient before clipping (a 1-D tensor in the order of
        #: ``players[i]``; None before the first gradient): the per-layer gradient health of the log
        self.last_layer_norms: list[Tensor | None] = [None] * n
        self.last_losses: list[float] = [float("nan")] * n
        #: data parallel: averages gradients and second-derivative products over the workers (one
        #: flat all-reduce per call); None in one process. Set with :meth:`configure`.
        self.reduce: Reduce | None = None
        #: float16 autocast: the dynamic loss scaler shared by all players (None: no scaling). Set with
        #: :meth:`configure`.
        self.scaler: LossScaler | None = None
        #: whether the last ``step`` was skipped (non-finite gradients under loss scaling) and undone
        self.last_step_skipped = False
        #: diagnostics for the log (see :meth:`stats`)
        self.last_stats: dict[str, float] = {}
        # within a step: the evaluator, the estimates drawn so far (their seeds), and which evaluations are
        # stale (the parameters were moved and put back since: their graph cannot be differentiated)
        self._evaluate: Closure | None = None
        self._estimates = 0
        self._epoch = 0
        self._epochs: dict[int, int] = {}
        if self.grad == "zo" and self.requires_double_backward:
            raise ConfigError(f"optim.grad: zo (zeroth-order estimates) serves the first-order methods and rules; "
                              f"{type(self).__name__} takes second derivatives of the losses")

    #: hyper-parameters that belong to the game, not to a player (never split per player)
    game_level: frozenset[str] = frozenset()
    #: whether ``step`` uses a closure's declared pushforward (``losses.pushforward``, see
    #: :class:`~saddlepoint.optim.derivatives.Pushforward`); a closure may skip that bookkeeping otherwise
    wants_pushforward: bool = False
    #: whether ``step`` takes a pair of closures on two independent minibatches (the unbiased stochastic form of
    #: Hamiltonian descent); the trainer then draws two batches per step
    wants_independent_batches: bool = False

    @property
    def requires_double_backward(self) -> bool:
        """Whether ``step`` differentiates twice through the closure's graph (second-derivative products): the
        losses must then be twice differentiable (no compiled modules; autocast only in float16). Here: whether
        the update rule asks for Hutchinson's diagonal; second-order methods declare True."""
        return self.rule_needs_hessian_diagonal

    # ------------------------------------------------------------------ collaborators
    def configure(self, *, reduce: Reduce | None = None, scaler: LossScaler | None = None) -> None:
        """Install the collaborators of a step: ``reduce`` averages gradients and products over data-parallel
        workers, ``scaler`` scales the losses of float16 autocast (None: one process, no scaling)."""
        self.reduce = reduce
        self.scaler = scaler

    @property
    def active_scaler(self) -> LossScaler | None:
        """The loss scaler if one is attached and enabled, else None."""
        return self.scaler if self.scaler is not None and self.scaler.enabled else None

    # ------------------------------------------------------------------ public contract
    def step(self, closure: Closure | tuple[Closure, Closure], players: Sequence[int] | None = None) -> list[float]:
        """Update the players (all, or the indices in ``players``) once; return the losses of the
        first evaluation, as floats. A method that declares :attr:`wants_independent_batches` also takes a pair of
        closures on two independent minibatches (the second one reached through :meth:`second_evaluation`)."""
        active = list(range(len(self.players))) if players is None else list(players)
        closure, self._second_closure = self._closures(closure)
        self._second_evaluator = None
        evaluate, tracked = self.evaluator(closure)
        self._first_evaluator = evaluate
        scaler = self.active_scaler

        # loss scaling: everything a skipped step may have changed, to put it back
        undo = None
        if scaler is not None:
            undo = ([self.snapshot(i) for i in range(len(self.players))], _clone(self.state),
                    list(self.last_grad_norms))
        skipped = False
        self._evaluate, self._estimates, self._epochs = tracked, 0, {}
        forward = self.counts.get("forward")
        try:
            self._step(tracked, active)
        except NonFiniteGradients:
            skipped = True
        finally:
            self._evaluate, self._epochs, self._second_closure = None, {}, None
        if forward is not None or "forward" in self.counts:
            self.last_stats["zo_forward"] = float(self.counts.get("forward", 0) - (forward or 0))
        evaluate.finish()
        second = self._second_evaluator
        if second is not None and second.calls > 0:  # the randomness of both evaluations consumed
            torch.set_rng_state(second.cpu_rng_after)
            if second.cuda_rng_after is not None:
                torch.cuda.set_rng_state_all(second.cuda_rng_after)
        self.last_step_skipped = skipped
        if skipped:
            assert undo is not None
            params, state, norms = undo
            for i, values in enumerate(params):
                self.set_params(i, values)
            self.state = state
            self.last_grad_norms[:] = norms  # in place: the list may be shared (lookahead)
            with torch.no_grad():
                for buf, saved in zip(self.buffers, evaluate.buffer_snapshot, strict=True):
                    buf.data.copy_(saved)
        else:
            self.step_count += 1
        if scaler is not None:
            scaler.update(found_inf=skipped)
        self.last_losses = getattr(evaluate, "first_losses", None) or self.last_losses
        return self.last_losses

    def evaluator(self, closure: Closure) -> tuple[StepEvaluator, Closure]:
        """The step's view of ``closure``: a :class:`StepEvaluator` (same randomness and buffers at every call from
        now on) and the callable a method calls, which checks the number of losses and scales them (loss
        scaling). :meth:`step` makes one for its closure; a method given a second closure (two minibatches) makes
        one for it."""
        evaluate = StepEvaluator(closure, self.buffers, self.counts)
        scaler = self.active_scaler

        def tracked() -> Sequence[Tensor]:
            losses = evaluate()
            if len(losses) != len(self.players):
                raise ValueError(
                    f"closure returned {len(losses)} losses for {len(self.players)} players"
                )
            losses = losses if scaler is None else scaler.scale_losses(losses)
            self._epochs[id(losses)] = self._epoch
            return losses

        return evaluate, tracked

    def _closures(self, closure: Any) -> tuple[Closure, Closure | None]:
        """``step``'s argument → the closure and, for a pair on two minibatches, the second one."""
        if callable(closure):
            return closure, None
        if (isinstance(closure, (list, tuple)) and len(closure) == 2 and all(map(callable, closure))
                and self.wants_independent_batches):
            return closure[0], closure[1]
        what = "a closure or a pair of closures on independent minibatches" if self.wants_independent_batches \
            else "a closure"
        raise TypeError(f"{type(self).__name__}: step takes {what}")

    @property
    def has_second_batch(self) -> bool:
        """Whether this step was given a second closure, on an independent minibatch."""
        return self._second_closure is not None

    def second_evaluation(self) -> Closure:
        """The callable that evaluates the step's second closure (independent minibatch), made on first use with
        the step's replay guarantees. Its random stream starts where the first evaluation left it (so dropout
        masks and penalty noise differ from the first's); after the step it is left where the second left it."""
        if self._second_closure is None:
            raise RuntimeError("second_evaluation: this step was given one closure")
        if self._second_evaluator is None:
            first = self._first_evaluator
            if first.calls == 0:
                raise RuntimeError("second_evaluation: evaluate the first closure first")
            torch.set_rng_state(first.cpu_rng_after)
            if first.cuda_rng_after is not None:
                torch.cuda.set_rng_state_all(first.cuda_rng_after)
            self._second_evaluator, self._second_tracked = self.evaluator(self._second_closure)
        return self._second_tracked

    _second_closure: Closure | None = None
    _second_evaluator: StepEvaluator | None = None

    def _step(self, evaluate: Closure, active: list[int]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            "method": type(self).__name__,
            "state": _clone(self.state),
            "hp": copy.deepcopy(self.hp),
            "shared": copy.deepcopy(self.shared),
            "step_count": self.step_count,
            "counts": dict(self.counts),
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None and self.scaler.enabled else {}),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("method") != type(self).__name__:
            raise ConfigError(
                f"optimizer state is for {state_dict.get('method')!r}, not {type(self).__name__!r}"
            )
        # Hyper-parameters stay those given to the constructor (the config is their source of truth, so
        # a deliberate change on resume takes effect); the state carries the method's memory.
        self.state = _clone(state_dict["state"])
        self.step_count = int(state_dict["step_count"])
        self.counts = dict(state_dict["counts"])
        if self.scaler is not None and state_dict.get("scaler") is not None:
            self.scaler.load_state_dict(state_dict["scaler"])

    # ------------------------------------------------------------------ helpers for methods
    def gradient(
        self, losses: Sequence[Tensor], i: int, *, create_graph: bool = False, clip: bool = True
    ) -> list[Tensor]:
        """∇_{θ_i} losses[i] (zeros for unused parameters), norm recorded and clipped per player.

        Without ``create_graph``: with ``grad: zo`` a zeroth-order estimate from loss values
        (:mod:`.zeroth_order`); when the update rule asks for Hutchinson's diagonal (AdaHessian), a
        :class:`~saddlepoint.optim.rules.Gradient` carrying it (:func:`~.derivatives.hutchinson_diagonal`). Either
        way unscaled, averaged over the workers and checked like a backpropagated gradient."""
        params = self.players[i]
        zeroth = not create_graph and self.grad == "zo"
        if not create_graph and not zeroth and self.rule_needs_hessian_diagonal:
            grads, diag = self._with_hessian_diagonal(self._current(losses), i)
            return Gradient(self.clip(i, grads) if clip else grads, hessian_diagonal=diag)
        if zeroth:
            grads = self._zeroth_order(losses, i)
        else:
            grads = torch.autograd.grad(
                self._current(losses)[i], params, retain_graph=True, create_graph=create_graph, allow_unused=True
            )
            self.counts["grad"] += 1
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        grads = self._finish(grads)
        if zeroth and self._check_due():
            self.last_stats[f"zo_cosine_{i}"] = zeroth_order.cosine(grads, self._autograd_check(i))
        if clip:
            grads = self.clip(i, grads)
        return grads

    def _finish(self, grads: list[Tensor]) -> list[Tensor]:
        """Unscale (loss scaling), average over the workers, check for inf/NaN."""
        scaler = self.active_scaler
        if scaler is not None:  # loss scaling: back to the true gradient (graph included)
            grads = scaler.unscale(grads)
        if self.reduce is not None:  # data parallel: the average over the workers (graph kept local)
            grads = straight_through(grads, self.reduce([g.detach() for g in grads]))
        if scaler is not None:  # after the average: every rank takes the same decision
            scaler.check(grads)
        return grads

    def clip(self, i: int, grads: list[Tensor]) -> list[Tensor]:
        """Record ‖g_i‖ (and the norm of each of its tensors, :attr:`last_layer_norms`) and rescale to
        ``max_grad_norm`` if it is exceeded."""
        layers = torch.stack(torch._foreach_norm(grads)) if grads else torch.zeros(0)
        self.last_layer_norms[i] = layers.detach()
        norm = torch.linalg.vector_norm(layers) if grads else torch.zeros(())
        self.last_grad_norms[i] = float(norm.detach())
        max_norm = self.hp[i].get("max_grad_norm")
        if max_norm is not None and self.last_grad_norms[i] > max_norm:
            scale = max_norm / (self.last_grad_norms[i] + 1e-12)
            grads = [g * scale for g in grads]
        return grads

    @torch.no_grad()
    def add_to_params(self, i: int, deltas: Sequence[Tensor], alpha: float = 1.0) -> None:
        torch._foreach_add_(self.players[i], list(deltas), alpha=alpha)

    @torch.no_grad()
    def set_params(self, i: int, values: Sequence[Tensor]) -> None:
        torch._foreach_copy_(self.players[i], list(values))

    def snapshot(self, i: int) -> list[Tensor]:
        return [p.detach().clone() for p in self.players[i]]

    def player_state(self, i: int) -> dict[str, Any]:
        """``self.state['players'][i]``, created on first use."""
        players = self.state.setdefault("players", [{} for _ in self.players])
        return players[i]


def nest_dotted(hyper_parameters: dict[str, Any]) -> dict[str, Any]:
    """``{"zo.q": 10}`` → ``{"zo": {"q": 10}}``, merged into a ``zo`` mapping given beside it (the analytic-game
    runner passes ``--set optim.zo.q=10`` that way)."""
    if not any("." in key for key in hyper_parameters):
        return hyper_parameters
    out: dict[str, Any] = {k: v for k, v in hyper_parameters.items() if "." not in k}
    for key, value in hyper_parameters.items():
        if "." in key:
            head, _, rest = key.partition(".")
            node = out.get(head)
            node = dict(node) if isinstance(node, dict) else {}
            node.update(nest_dotted({rest: value}))
            out[head] = node
    return out


def check_hyper_parameter(key: str, value: Any, default: Any) -> Any:
    """Type-check a hyper-parameter against its default (:func:`saddlepoint.checks.like`): numbers finite real
    numbers (``lr`` and ``max_grad_norm`` positive), strings strings, booleans booleans; a ``None`` default
    (an optional number) accepts None or a number."""
    name = f"optim.{key}"
    if default is None and value is not None and key != "inner":
        default = 0.0
    value = checks.like(name, value, default)
    if key in ("lr", "max_grad_norm") and value is not None:
        checks.positive(name, value)
    return value


def per_player(value: Any, n: int, key: str) -> list[Any]:
    """A scalar → n copies; a list/tuple must have exactly n entries."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigError(f"{key}: expected one value or {n} (one per player), got {len(value)}")
        return list(value)
    return [value] * n


def _clone(obj: Any) -> Any:
    """Deep copy of a state tree of tensors, numbers and plain containers."""
    if isinstance(obj, Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_clone(v) for v in obj)
    return copy.deepcopy(obj)


def build(name: str, players: Sequence[Iterable[Tensor] | nn.Module], **hyper_parameters: Any) -> GameOptimizer:
    """Build the registered game optimizer ``name`` for ``players`` (a list of parameter lists)."""
    return OPTIMIZERS.get(name, "optim.name")(players, **hyper_parameters)
