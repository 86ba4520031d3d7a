"""Tangent-only forward passes through chain-structured networks: J·v from a recorded forward pass.

Forward-mode differentiation (``torch.func.jvp``) recomputes every layer's output together with its
tangent: for a linear layer y = W a that is three products (W a, W ȧ, Ẇ a) where the tangent needs two.
When the network is a **chain** of standard layers — each layer's input the previous layer's output,
reshaped at most, the first layer's input the network's input — the activations of the forward pass that
made the output are all the tangent needs. :class:`ChainRecorder` records that pass (forward hooks on the
leaf modules, references to tensors autograd keeps anyway); :meth:`ChainRecorder.linearize` checks that the
recorded calls form such a chain of layers with a tangent rule and returns a :class:`ChainTangent` whose
``jvp`` propagates a parameter tangent layer by layer, or ``None`` when anything is outside what it can
prove (a skip connection, an operation between layers, an in-place change, a parametrised or hook-computed
weight, a layer without a rule) — the caller then uses ``torch.func.jvp``.

The GAN closure (:mod:`saddlepoint.games.gan`) uses it for the D_yx·u products of CGD and ACGD; its cost
against ``torch.func.jvp`` is measured in ``benchmarks/bench_optim.py``, part ``dyx``. Adding a layer type is
one function decorated with :func:`tangent_rule`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ChainUnsupported(Exception):
    """The recorded calls are not a chain this module can linearise (the message says why)."""


@dataclass
class Call:
    """One recorded call of a leaf module: its input ``a`` and output ``y`` (and their version counters,
    to detect later in-place changes), the RNG state before it (layers that draw random numbers) and the
    running statistics it read (BatchNorm in evaluation mode)."""

    module: nn.Module
    a: Tensor
    y: Tensor
    a_version: int
    y_version: int
    rng: Tensor | None = None
    running: tuple[Tensor, Tensor] | None = None
    cache: dict[str, Any] = field(default_factory=dict)


#: ``rule(call, t, d)``: the output tangent of ``call`` for input tangent ``t`` (None: zero) and parameter
#: tangents ``d`` (name → tensor; missing: zero); returns None for a zero tangent.
Rule = Callable[[Call, Tensor | None, dict[str, Tensor]], Tensor | None]


@dataclass(frozen=True)
class _RuleEntry:
    rule: Rule
    params: frozenset[str]
    random: bool
    prepare: Callable[[Call], None] | None


_RULES: dict[type, _RuleEntry] = {}


def tangent_rule(
    *types: type, params: Sequence[str] = (), random: bool = False, prepare: Callable[[Call], None] | None = None
) -> Callable[[Rule], Rule]:
    """Register ``rule`` for the exact module ``types`` (subclasses may override ``forward``: not covered);
    ``params`` names the parameters the rule differentiates (any other makes the module unsupported),
    ``random`` asks the recorder for the RNG state before each call, ``prepare(call)`` runs when the chain is
    linearised and may reject it by raising :class:`ChainUnsupported`."""

    def decorator(rule: Rule) -> Rule:
        for t in types:
            _RULES[t] = _RuleEntry(rule, frozenset(params), random, prepare)
        return rule

    return decorator


def _add(*terms: Tensor | None) -> Tensor | None:
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


def _bilinear(
    op: Callable[..., Tensor], call: Call, t: Tensor | None, d: dict[str, Tensor], bias_dim: int, **kw: Any
) -> Tensor | None:
    """y = op(a, W, b) is linear in a and bilinear in (a, W): ẏ = op(ȧ, W) + op(a, Ẇ, ḃ); the bias runs along
    ``bias_dim`` of y (features of a linear layer: last; channels of a convolution: before its spatial dims,
    batched or not)."""
    m = call.module
    dw, db = d.get("weight"), d.get("bias")
    through_input = None if t is None else op(t, m.weight, None, **kw)
    through_params = None
    if dw is not None:
        through_params = op(call.a, dw, db, **kw)
    elif db is not None:
        shape = [1] * call.y.dim()
        shape[bias_dim] = -1
        through_params = db.reshape(shape).expand_as(call.y)
    return _add(through_input, through_params)


@tangent_rule(nn.Linear, params=("weight", "bias"))
def _linear(call: Call, t: Tensor | None, d: dict[str, Tensor]) -> Tensor | None:
    return _bilinear(F.linear, call, t, d, -1)


def _conv_rule(op: Callable[..., Tensor], spatial: int) -> Rule:
    def rule(call: Call, t: Tensor | None, d: dict[str, Tensor]) -> Tensor | None:
        m = call.module
        return _bilinear(op, call, t, d, -1 - spatial, stride=m.stride, padding=m.padding, dilation=m.dilation,
                         groups=m.groups)

    return rule


def _conv_transpose_rule(op: Callable[..., Tensor], spatial: int) -> Rule:
    def rule(call: Call, t: Tensor | None, d: dict[str, Tensor]) -> Tensor | None:
        m = call.module
        return _bilinear(op, call, t, d, -1 - spatial, stride=m.stride, padding=m.padding,
                         output_padding=m.output_padding, groups=m.groups, dilation=m.dilation)

    return rule


tangent_rule(nn.Conv1d, params=("weight", "bias"))(_conv_rule(F.conv1d, 1))
tangent_rule(nn.Conv2d, params=("weight", "bias"))(_conv_rule(F.conv2d, 2))
tangent_rule(nn.Conv3d, params=("weight", "bias"))(_conv_rule(F.conv3d, 3))
tangent_rule(nn.ConvTranspose1d, params=("weight", "bias"))(_conv_transpose_rule(F.conv_transpose1d, 1))
tangent_rule(nn.ConvTranspose2d, params=("weight", "bias"))(_conv_transpose_rule(F.conv_transpose2d, 2))
tangent_rule(nn.ConvTranspose3d, params=("weight", "bias"))(_conv_transpose_rule(F.conv_transpose3d, 3))


@tangent_rule(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, params=("weight", "bias"))
def _batch_norm(call: Call, t: Tensor | None, d: dict[str, Tensor]) -> Tensor | None:
    """y = γ x̂ + β, x̂ = (a − μ)/s. With batch statistics (training mode) μ and s² (biased) depend on a:
    ẋ̂ = (ȧ − mean ȧ − x̂·mean(x̂ ȧ))/s, means over every dimension but the channel's (Ioffe & Szegedy 2015,
    the gradient of §3 transposed); with running statistics ẋ̂ = ȧ/s."""
    m = call.module
    if "xhat" not in call.cache:
        dims = [i for i in range(call.a.dim()) if i != 1]
        shape = [1] * call.a.dim()
        shape[1] = -1
        if call.running is None:
            var, mean = torch.var_mean(call.a, dim=dims, unbiased=False, keepdim=True)
        else:
            mean, var = (r.reshape(shape) for r in call.running)
        inv = torch.rsqrt(var + m.eps)
        call.cache.update(xhat=(call.a - mean) * inv, inv=inv, dims=dims, shape=shape)
    xhat, inv, dims, shape = (call.cache[k] for k in ("xhat", "inv", "dims", "shape"))
    dxhat = None
    if t is not None:
        if call.running is None:
            dxhat = (t - t.mean(dim=dims, keepdim=True) - xhat * (xhat * t).mean(dim=dims, keepdim=True)) * inv
        else:
            dxhat = t * inv
        if m.weight is not None:
            dxhat = dxhat * m.weight.reshape(shape)
    dw, db = d.get("weight"), d.get("bias")
    return _add(dxhat, None if dw is None else xhat * dw.reshape(shape),
                None if db is None else db.reshape(shape).expand_as(call.y))


def _slope_rule(slope: Callable[[Call], Tensor]) -> Rule:
    """Elementwise layers: ẏ = f'(a)·ȧ, f' computed once per recorded call."""

    def rule(call: Call, t: Tensor | None, d: dict[str, Tensor]) -> Tensor | None:
        if t is None:
            return None
        if "slope" not in call.cache:
            call.cache["slope"] = slope(call)
        return t * call.cache["slope"]

    return rule


tangent_rule(nn.ReLU)(_slope_rule(lambda c: (c.a > 0).to(c.a.dtype)))
tangent_rule(nn.LeakyReLU)(_slope_rule(
    lambda c: torch.where(c.a > 0, c.a.new_ones(()), c.a.new_full((), c.module.negative_slope))))
tangent_rule(nn.ELU)(_slope_rule(lambda c: torch.where(c.a > 0, c.a.new_ones(()), c.y + c.module.alpha)))
tangent_rule(nn.Tanh)(_slope_rule(lambda c: 1 - c.y * c.y))
tangent_rule(nn.Sigmoid)(_slope_rule(lambda c: c.y * (1 - c.y)))


@tangent_rule(nn.Identity, nn.Flatten, nn.Unflatten)
def _reshape(call: Call, t: Tensor | None, d: dict[str, Tensor]) -> Tensor | None:
    return None if t is None else t.reshape(call.y.shape)


def _dropout_scale(call: Call) -> Tensor:
    """The call's mask divided by 1 − p, drawn again from the RNG state before the call (same shape, dtype
    and device: the same draws); checked against the recorded output."""
    m = call.module
    if not m.training or m.p == 0:
        return torch.ones((), dtype=call.a.dtype, device=call.a.device)
    assert call.rng is not None
    cuda = call.a.device.type == "cuda"
    saved = torch.cuda.get_rng_state(call.a.device) if cuda else torch.get_rng_state()
    try:
        if cuda:
            torch.cuda.set_rng_state(call.rng, call.a.device)
        else:
            torch.set_rng_state(call.rng)
        scale = F.dropout(torch.ones_like(call.a), m.p, True)
    finally:
        if cuda:
            torch.cuda.set_rng_state(saved, call.a.device)
        else:
            torch.set_rng_state(saved)
    if not torch.equal(call.a * scale, call.y):
        raise ChainUnsupported("the dropout mask could not be drawn again")
    return scale


tangent_rule(nn.Dropout, random=True, prepare=lambda c: c.cache.setdefault("slope", _dropout_scale(c)))(
    _slope_rule(_dropout_scale))


def _same_data(a: Tensor, b: Tensor) -> bool:
    """``a`` is ``b`` (the same view, any memory format: channels-last included) or a reshape of it that keeps
    the elements' order (both contiguous)."""
    if not (
        a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
        and a.storage_offset() == b.storage_offset()
        and a.dtype == b.dtype
    ):
        return False
    if a.shape == b.shape and a.stride() == b.stride():
        return True
    return a.numel() == b.numel() and a.is_contiguous() and b.is_contiguous()


class ChainTangent:
    """J·v of a recorded chain: ``jvp(tangents)`` with one tangent per parameter of ``params``."""

    def __init__(self, calls: list[Call], params: Sequence[Tensor], output: Tensor) -> None:
        self.output = output
        index = {id(p): i for i, p in enumerate(params)}
        # per call: its rule and (parameter name, position in ``params``) for the parameters that move
        self._plan = [
            (call, _RULES[type(call.module)].rule,
             [(name, index[id(p)]) for name, p in call.module.named_parameters(recurse=False) if id(p) in index])
            for call in calls
        ]

    def jvp(self, tangents: Sequence[Tensor]) -> Tensor:
        with torch.no_grad():
            t: Tensor | None = None
            for call, rule, moving in self._plan:
                if t is not None and t.shape != call.a.shape:
                    t = t.reshape(call.a.shape)
                t = rule(call, t, {name: tangents[i] for name, i in moving})
            if t is None:
                return torch.zeros_like(self.output)
            return t.reshape(self.output.shape)


class ChainRecorder:
    """``with ChainRecorder(net) as rec: out = net(x)`` records the leaf modules' calls; then
    ``rec.linearize(x, out, params)`` returns a :class:`ChainTangent` or None (see the module doc)."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.calls: list[Call] = []
        self.problem: str | None = None
        self._handles: list[Any] = []
        self._pending: dict[int, tuple[Tensor, int, Tensor | None]] = {}

    def __enter__(self) -> ChainRecorder:
        for m in self.net.modules():
            if next(m.children(), None) is not None:
                if next(m.parameters(recurse=False), None) is not None:
                    self.problem = f"{type(m).__name__} has children and parameters of its own"
                continue
            self._handles.append(m.register_forward_pre_hook(self._before, with_kwargs=True))
            self._handles.append(m.register_forward_hook(self._after, with_kwargs=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._pending.clear()

    def _before(self, m: nn.Module, args: tuple, kwargs: dict) -> None:
        if kwargs or len(args) != 1 or not isinstance(args[0], Tensor):
            self.problem = self.problem or f"{type(m).__name__} called with other than one tensor"
            return
        entry = _RULES.get(type(m))
        rng = None
        if entry is not None and entry.random:
            a = args[0]
            rng = torch.cuda.get_rng_state(a.device) if a.device.type == "cuda" else torch.get_rng_state()
        self._pending[id(m)] = (args[0], args[0]._version, rng)

    def _after(self, m: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        pending = self._pending.pop(id(m), None)
        if pending is None:
            return
        a, version, rng = pending
        if not isinstance(out, Tensor) or a._version != version:
            self.problem = self.problem or f"{type(m).__name__}: not one tensor out, or its input changed in place"
            return
        running = None
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.training and m.running_mean is not None:
            running = (m.running_mean.detach().clone(), m.running_var.detach().clone())
        self.calls.append(Call(m, a.detach(), out.detach(), version, out._version, rng, running))

    def _check(self, x: Tensor, out: Tensor) -> None:
        if self.problem:
            raise ChainUnsupported(self.problem)
        if not self.calls:
            raise ChainUnsupported("no layer was called")
        previous = x
        for call in self.calls:
            m = call.module
            entry = _RULES.get(type(m))
            if entry is None:
                raise ChainUnsupported(f"no tangent rule for {type(m).__name__}")
            if set(dict(m.named_parameters(recurse=False))) - entry.params:
                raise ChainUnsupported(f"{type(m).__name__} has parameters the rule does not know")
            if getattr(m, "padding_mode", "zeros") != "zeros" or getattr(m, "inplace", False):
                raise ChainUnsupported(f"{type(m).__name__}: padding mode or in-place")
            if call.a._version != call.a_version or not _same_data(call.a, previous):
                raise ChainUnsupported(f"{type(m).__name__}'s input is not the previous layer's output")
            previous = call.y
            if call.y._version != call.y_version:
                raise ChainUnsupported(f"{type(m).__name__}'s output changed in place")
        if not _same_data(out, previous):
            raise ChainUnsupported("the output is not the last layer's")

    def linearize(self, x: Tensor, out: Tensor, params: Sequence[Tensor]) -> ChainTangent | None:
        """The recorded pass's tangent map, or None when the recorded calls are not a supported chain from
        ``x`` to ``out``. (Dropout masks are checked when first drawn again; a failure there raises.)"""
        try:
            self._check(x, out)
            for call in self.calls:
                prepare = _RULES[type(call.module)].prepare
                if prepare is not None:
                    prepare(call)
        except ChainUnsupported as exc:
            self.problem = str(exc)
            return None
        return ChainTangent(self.calls, params, out)
