"""The trainer's lazy closure computes exactly what evaluating everything every time computes."""

from __future__ import annotations

import copy

import pytest
import torch

from saddlepoint.losses import LOSSES, build_penalty
from saddlepoint.models import build_models
from saddlepoint.optim import build
from saddlepoint.train.closure import GANClosure, LazyLosses


def eager_closure(G, D, loss_fn, penalties, real, z):
    """The reference: G, D(fake), D(real), losses and penalties on every call."""

    def closure():
        fake = G(z)
        d_fake = D(fake)
        d_real = D(real)
        loss_g, loss_d = loss_fn(d_real, d_fake)
        for penalty in penalties:
            loss_d = loss_d + penalty(D, real, fake)
        return [loss_g, loss_d]

    return closure


class ForwardCounter:
    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        self.calls += 1


def make_models(seed=0):
    torch.manual_seed(seed)
    # BatchNorm in G, dropout in D: buffers and random masks must both come out identical
    return build_models("dcgan28", (1, 28, 28), 8, scale=0.125)


@pytest.mark.parametrize(
    ("method", "hp", "penalty", "expected_reuses"),
    [
        # D first, then G at an unchanged G: G(z) reused on each of the 3 steps
        ("adam", {"scheme": "alternating", "lr": 1e-3}, None, 3),
        ("adam", {"scheme": "alternating", "lr": 1e-3}, "gp", 3),
        # G's gradient is taken at its look-ahead point once it has a velocity (after step 1)
        ("nesterov", {"scheme": "alternating", "lr": 1e-2}, None, 1),
        # G first: D's evaluation comes after G moved
        ("sgd", {"scheme": "alternating", "order": "forward", "lr": 1e-2}, "r1", 0),
        ("extragradient", {"lr": 1e-3}, None, 0),
        ("adam", {"scheme": "simultaneous", "lr": 1e-3}, None, 0),
        ("cgd", {"lr": 1e-2}, None, 0),
    ],
)
def test_lazy_closure_matches_eager_evaluation_bit_for_bit(method, hp, penalty, expected_reuses):
    G0, D0 = make_models()
    runs = {}
    for kind in ("eager", "lazy"):
        G, D = copy.deepcopy(G0), copy.deepcopy(D0)
        penalties = [build_penalty(penalty, 10.0)] if penalty else []
        opt = build(method, [list(G.parameters()), list(D.parameters())], buffers=[*G.buffers(), *D.buffers()], **hp)
        data_gen = torch.Generator().manual_seed(1)
        torch.manual_seed(2)  # dropout masks and penalty interpolates come from the global stream
        losses_seen, reuses = [], 0
        for _ in range(3):
            real = torch.rand(16, 1, 28, 28, generator=data_gen) * 2 - 1
            z = torch.randn(16, 8, generator=data_gen)
            if kind == "eager":
                closure = eager_closure(G, D, LOSSES.get("ns"), penalties, real, z)
            else:
                closure = GANClosure(G, D, LOSSES.get("ns"), penalties, real, z, {})
            losses_seen.append(opt.step(closure))
            reuses += getattr(closure, "generator_reuses", 0)
        runs[kind] = (G, D, losses_seen, reuses)
    (Ge, De, le, _), (Gl, Dl, ll, reuses) = runs["eager"], runs["lazy"]
    assert le == ll
    def tensors(G, D):
        return [*G.parameters(), *D.parameters(), *G.buffers()]

    for a, b in zip(tensors(Ge, De), tensors(Gl, Dl)):
        assert torch.equal(a, b)
    assert reuses == expected_reuses


def test_generator_step_skips_real_batch_and_reuses_generator():
    G, D = make_models()
    g_calls, d_calls = ForwardCounter(G), ForwardCounter(D)
    opt = build("adam", [list(G.parameters()), list(D.parameters())], buffers=[*G.buffers()], scheme="alternating")
    real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    opt.step(GANClosure(G, D, LOSSES.get("ns"), [], real, z, {}))
    # D step: G(z), D(fake), D(real); G step: D(fake) only
    assert (g_calls.calls, d_calls.calls) == (1, 3)
    assert opt.counts["closure"] == 2


def test_generator_is_recomputed_when_its_parameters_move():
    G, D = make_models()
    g_calls = ForwardCounter(G)
    real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    closure = GANClosure(G, D, LOSSES.get("ns"), [], real, z, {})
    first = closure()[0]
    with torch.no_grad():
        next(G.parameters()).add_(0.1)
    second = closure()[0]
    assert g_calls.calls == 2 and closure.generator_reuses == 0
    assert not torch.equal(first, second)


def test_lazy_losses_compute_the_discriminator_loss_once_and_index_like_a_list():
    calls = []
    losses = LazyLosses(torch.tensor(1.0), lambda: calls.append(1) or torch.tensor(2.0))
    assert not losses.discriminator_computed and not calls
    assert float(losses[-1]) == 2.0 and float(losses[1]) == 2.0 and calls == [1]
    assert [float(x) for x in losses] == [1.0, 2.0] and len(losses) == 2
    assert [float(x) for x in losses[0:1]] == [1.0]
    with pytest.raises(IndexError):
        losses[2]


def test_a_loss_whose_generator_term_uses_real_data_is_computed_in_full():
    def relativistic(d_real, d_fake):
        return (d_real.mean() - d_fake.mean()), (d_fake.mean() - d_real.mean())

    relativistic.generator_uses_real = True
    G, D = make_models()
    real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    d_calls = ForwardCounter(D)
    losses = GANClosure(G, D, relativistic, [], real, z, {})()
    assert d_calls.calls == 2 and losses.discriminator_computed
    torch.testing.assert_close(losses[0], -losses[1])
