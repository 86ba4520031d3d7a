"""Tangent-only passes over recorded chains (saddlepoint.games.tangents): equal to forward-mode
differentiation of the whole network to rounding in float64, and refused wherever the recording cannot prove
the network is a chain of layers it knows."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, jvp
from torch.nn.utils import spectral_norm as old_spectral_norm
from torch.nn.utils.parametrizations import spectral_norm

from saddlepoint.games.gan import GANClosure
from saddlepoint.games.tangents import ChainRecorder
from saddlepoint.losses import LOSSES
from saddlepoint.models import MODELS
from saddlepoint.optim.derivatives import GameDerivatives


def reference_jvp(net: nn.Module, z: torch.Tensor, tangents: list[torch.Tensor], rng: torch.Tensor,
                  buffers: dict[str, torch.Tensor]) -> torch.Tensor:
    """J·v by torch.func.jvp through the whole network, same random stream and buffers as the recorded pass."""
    names = [n for n, _ in net.named_parameters()]
    params = {n: p.detach() for n, p in net.named_parameters()}
    torch.set_rng_state(rng)
    return jvp(lambda ps: functional_call(net, (ps, {n: b.clone() for n, b in buffers.items()}), (z,)),
               (params,), (dict(zip(names, tangents, strict=True)),))[1]


def record(net: nn.Module, z: torch.Tensor):
    buffers = {n: b.detach().clone() for n, b in net.named_buffers()}
    rng = torch.get_rng_state()
    with ChainRecorder(net) as rec:
        out = net(z)
    return rec, out, rng, buffers


class Reshaped(nn.Module):
    """Layers, a reshape in ``forward``, more layers (the DCGAN generators' shape)."""

    def __init__(self, head: nn.Module, tail: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.head, self.tail, self.shape = head, tail, shape

    def forward(self, z):
        return self.tail(self.head(z).reshape(z.shape[0], *self.shape))


def _conv_net() -> nn.Module:
    head = nn.Sequential(nn.Linear(5, 24), nn.ELU(), nn.Dropout(0.25), nn.Unflatten(1, (3, 8)),
                         nn.Conv1d(3, 4, 3, padding=1), nn.BatchNorm1d(4), nn.Sigmoid(), nn.Flatten(),
                         nn.Identity())
    tail = nn.Sequential(nn.Conv2d(2, 3, 3, stride=1, padding=1, dilation=1), nn.BatchNorm2d(3, affine=False),
                         nn.ReLU(), nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                         nn.Tanh())
    return Reshaped(head, tail, (2, 4, 4))


NETWORKS = {
    "dcgan28": lambda: MODELS.get("dcgan28")((1, 28, 28), 6, scale=0.25)[0],
    "dcgan32": lambda: MODELS.get("dcgan32")((3, 32, 32), 6, scale=0.125)[0],
    "mlp": lambda: MODELS.get("mlp")((2,), 6)[0],
    "conv1d-conv2d-dropout-elu-sigmoid": _conv_net,
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("training", [True, False])
def test_chain_tangent_equals_forward_mode(name, training):
    """Every layer rule (linear, conv 1-d/2-d, transposed conv with output padding, BatchNorm with batch and with
    running statistics, affine or not, ReLU/LeakyReLU/ELU/Tanh/Sigmoid, dropout masks drawn again, reshapes)
    against torch.func.jvp of the whole network, float64: 1e-12 relative."""
    torch.manual_seed(0)
    net = NETWORKS[name]().double().train(training)
    for m in net.modules():  # running statistics that differ from the batch's (evaluation mode uses them)
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    z = torch.randn(7, 6 if name != "conv1d-conv2d-dropout-elu-sigmoid" else 5, dtype=torch.float64)
    rec, out, rng, buffers = record(net, z)
    params = list(net.parameters())
    chain = rec.linearize(z, out, params)
    assert chain is not None, rec.problem
    for seed in (1, 2):
        g = torch.Generator().manual_seed(seed)
        tangents = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
        got = chain.jvp(tangents)
        want = reference_jvp(net, z, tangents, rng, buffers)
        assert float(want.norm()) > 0
        assert float((got - want).norm()) <= 1e-12 * float(want.norm())


def test_channels_last_models_are_chains_too():
    """The trainer's ``channels_last`` option: activations in channels-last memory format are still recognised
    (same view from layer to layer) and the tangent equals forward mode's."""
    torch.manual_seed(0)
    net = NETWORKS["dcgan32"]().double().to(memory_format=torch.channels_last)
    z = torch.randn(5, 6, dtype=torch.float64)
    rec, out, rng, buffers = record(net, z)
    assert not out.is_contiguous() and out.is_contiguous(memory_format=torch.channels_last)
    params = list(net.parameters())
    chain = rec.linearize(z, out, params)
    assert chain is not None, rec.problem
    tangents = [torch.randn_like(p) for p in params]
    want = reference_jvp(net, z, tangents, rng, buffers)
    assert float((chain.jvp(tangents) - want).norm()) <= 1e-12 * float(want.norm())


def test_a_parameter_subset_moves_only_those_parameters():
    """Parameters not passed to ``linearize`` (frozen) have zero tangent."""
    torch.manual_seed(0)
    net = NETWORKS["dcgan28"]().double()
    z = torch.randn(5, 6, dtype=torch.float64)
    rec, out, rng, buffers = record(net, z)
    params = list(net.parameters())
    moving = params[2:]
    chain = rec.linearize(z, out, moving)
    tangents = [torch.randn_like(p) for p in moving]
    full = [torch.zeros_like(p) for p in params[:2]] + tangents
    want = reference_jvp(net, z, full, rng, buffers)
    assert float((chain.jvp(tangents) - want).norm()) <= 1e-12 * float(want.norm())


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, z):
        return self.b(z + self.a(z))


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, z):
        return self.b(2 * self.a(z))


class InPlaceBetween(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, z):
        h = self.a(z)
        h.mul_(2)
        return self.b(h)


class Permuted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, z):
        return self.b(self.a(z).t())  # same storage, elements in another order


class OwnParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 2)
        self.shift = nn.Parameter(torch.zeros(2))

    def forward(self, z):
        return self.a(z)


class Softsign(nn.Module):  # a layer without a rule
    def forward(self, x):
        return x / (1 + x.abs())


class KeywordCall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 2)

    def forward(self, z):
        return self.a(input=z)


UNSUPPORTED = {
    "skip connection": (Residual, "input is not the previous layer's output"),
    "operation between layers": (Scaled, "input is not the previous layer's output"),
    "in-place change between layers": (InPlaceBetween, "changed in place"),
    "non-contiguous view": (Permuted, "input is not the previous layer's output"),
    "parameter outside the layers": (OwnParameter, "parameters of its own"),
    "layer without a rule": (lambda: nn.Sequential(nn.Linear(3, 2), Softsign()), "no tangent rule for Softsign"),
    "in-place activation": (lambda: nn.Sequential(nn.Linear(3, 2), nn.ReLU(inplace=True)), "in place"),
    "parametrised weight": (lambda: nn.Sequential(spectral_norm(nn.Linear(3, 2))), "parameters of its own"),
    "parametrised weight, no bias": (lambda: nn.Sequential(spectral_norm(nn.Linear(3, 2, bias=False))),
                                     "parameters of its own"),  # the parametrisation's own container
    "weight computed by a hook": (lambda: nn.Sequential(old_spectral_norm(nn.Linear(3, 2))),
                                  "parameters the rule does not know"),
    "keyword call": (KeywordCall, "other than one tensor"),
    "input not the network's": (lambda: nn.Sequential(nn.Linear(3, 3)), "input is not the previous layer's output"),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_what_cannot_be_proved_a_chain_is_refused(case):
    make, reason = UNSUPPORTED[case]
    torch.manual_seed(0)
    net = make()
    z = torch.randn(4, 3)
    hooks = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in net.modules()]
    with ChainRecorder(net) as rec:
        out = net(z if case != "input not the network's" else z.clone())
    assert rec.linearize(z, out, list(net.parameters())) is None
    assert reason in rec.problem
    assert hooks == [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in net.modules()]  # ours removed


# ----------------------------------------------------------------------------- in the GAN closure
class ResidualGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 8)
        self.block = nn.Sequential(nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 8))
        self.out = nn.Linear(8, 2)

    def forward(self, z):
        h = self.inp(z)
        return self.out(h + self.block(h))


@pytest.mark.parametrize("generator", ["dcgan28", "residual"])
def test_closure_products_take_the_chain_or_fall_back(generator):
    """In the GAN closure D_yx·u through the declared samples equals the double-backward product (float64,
    1e-12) by the chain pass for a chain generator and by torch.func.jvp (same dropout masks: the closure rewinds
    the random stream) for one with a skip connection."""
    torch.manual_seed(0)
    if generator == "dcgan28":
        G, D = (m.double() for m in MODELS.get("dcgan28")((1, 28, 28), 6, scale=0.25))
        real, z = torch.rand(6, 1, 28, 28, dtype=torch.float64) * 2 - 1, torch.randn(6, 6, dtype=torch.float64)
    else:
        G = ResidualGenerator().double()
        D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1)).double()
        real, z = torch.randn(10, 2, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)
    players = [list(G.parameters()), list(D.parameters())]
    u = [torch.randn(p.shape, dtype=torch.float64) for p in players[0]]
    closure = GANClosure(G, D, LOSSES.get("minimax"), [], real, z, {}, pushforward=True)
    torch.manual_seed(5)
    want = GameDerivatives(players, list(closure())).mixed(1, 1, 0, u)
    torch.manual_seed(5)
    losses = closure()
    got = GameDerivatives(players, list(losses), pushforward=losses.pushforward).mixed(1, 1, 0, u)
    assert closure.tangent_path == ("chain" if generator == "dcgan28" else "jvp")
    num = sum(float((a - b).pow(2).sum()) for a, b in zip(got, want, strict=True)) ** 0.5
    den = sum(float(b.pow(2).sum()) for b in want) ** 0.5
    assert den > 0 and num <= 1e-12 * den
