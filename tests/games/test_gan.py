"""The GAN as a game (saddlepoint.games.gan): the lazy closure computes exactly what evaluating everything every
time computes, and declares the generator's pushforward where it can."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

from saddlepoint.data.augment import DiffAugment
from saddlepoint.games.gan import Augmented, GANClosure, LazyLosses, supports_forward_tangents
from saddlepoint.losses import LOSSES, build_penalty
from saddlepoint.models import build_models
from saddlepoint.optim import build


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


# ----------------------------------------------------------------------------- forward-mode mixed products
class _Generator(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.z_dim = 3
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Dropout(0.3), torch.nn.Linear(8, 2))

    def forward(self, z):
        return self.net(z)


def _small_gan():
    torch.manual_seed(0)
    G = _Generator().double()
    D = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Dropout(0.2),
                            torch.nn.Linear(8, 1)).double()
    real = torch.randn(16, 2, dtype=torch.float64)
    z = torch.randn(16, 3, dtype=torch.float64)
    return G, D, real, z


def test_forward_mode_mixed_product_equals_the_double_backward_one():
    """D_yx·u through the generator's samples (forward mode through G, with BatchNorm and dropout in G and
    dropout in D) equals ∇_D(∇_G L_D·u) by double backpropagation, to rounding in float64."""
    from saddlepoint.optim.derivatives import GameDerivatives

    G, D, real, z = _small_gan()
    closure = GANClosure(G, D, LOSSES.get("ns"), [build_penalty("gp", weight=1.0)], real, z, {}, pushforward=True)
    players = [list(G.parameters()), list(D.parameters())]
    u = [torch.randn(p.shape, dtype=torch.float64) for p in players[0]]
    torch.manual_seed(5)
    losses = closure()
    assert losses.pushforward is not None and 0 in losses.pushforward
    plain = GameDerivatives(players, list(losses))
    want = [plain.mixed(k, 1, 0, u) for k in (0, 1)]
    torch.manual_seed(5)
    losses = closure()
    counts = {"grad": 0, "hvp": 0, "closure": 0}
    fwd = GameDerivatives(players, list(losses), pushforward=losses.pushforward, counts=counts)
    for k in (0, 1):
        got = fwd.mixed(k, 1, 0, u)
        num = sum(float((a - b).pow(2).sum()) for a, b in zip(got, want[k], strict=True)) ** 0.5
        den = sum(float(b.pow(2).sum()) for b in want[k]) ** 0.5
        assert den > 0 and num <= 1e-12 * den, (k, num / den)
    assert counts == {"grad": 2, "hvp": 2, "closure": 0}  # ∇_x̃ L_k once per loss, one product each
    assert closure.tangent_path == "chain"  # G's dropout mask drawn again (tests/test_tangents.py: the fallback)
    # the other direction (through D, not declared) and the pure blocks take the usual path
    v = [torch.randn(p.shape, dtype=torch.float64) for p in players[1]]
    torch.manual_seed(5)
    a = fwd.mixed(1, 0, 1, v)
    b = plain.mixed(1, 0, 1, v)
    assert all(torch.allclose(x, y, rtol=1e-12, atol=0) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", ["cgd", "acgd"])
def test_forward_mode_steps_match(name):
    """Three CGD/ACGD steps with ``forward_mode: true`` (minimax loss: zero-sum, CG; BatchNorm and dropout in
    G, dropout in D) give the parameters, buffers and random stream of the default, to rounding."""
    results = []
    for forward_mode in (False, True):
        G, D, real, z = _small_gan()
        opt = build(name, [list(G.parameters()), list(D.parameters())], buffers=[*G.buffers(), *D.buffers()],
                    lr=0.05, tol=1e-10, forward_mode=forward_mode)
        torch.manual_seed(1)
        for _ in range(3):
            opt.step(GANClosure(G, D, LOSSES.get("minimax"), [], real, z, {}, pushforward=opt.wants_pushforward))
        results.append(([p.detach().clone() for p in [*G.parameters(), *D.parameters()]],
                        [b.clone() for b in G.buffers()], torch.get_rng_state(), dict(opt.counts),
                        opt.last_solve["iterations"]))
    (p0, b0, r0, c0, k0), (p1, b1, r1, c1, k1) = results
    assert k0 == k1 > 0
    for x, y in zip(p0, p1, strict=True):
        assert torch.allclose(x, y, rtol=1e-10, atol=1e-12)
    # running statistics follow the (rounding-level) parameter differences; the jvp itself never touches them
    assert all(torch.allclose(x.double(), y.double(), rtol=1e-10, atol=1e-12) for x, y in zip(b0, b1, strict=True))
    assert torch.equal(r0, r1)
    assert c1["hvp"] == c0["hvp"] and c1["grad"] > c0["grad"]


def test_no_pushforward_under_autocast_or_with_synchronised_batchnorm():
    """The declaration needs G's forward pass to be reproducible locally: not with the project's synchronised
    BatchNorm (its statistics are all-reduced across workers) nor under autocast."""
    from saddlepoint.training.distributed import convert_sync_batchnorm

    G, D, real, z = _small_gan()
    assert GANClosure(G, D, LOSSES.get("ns"), [], real, z, {}, pushforward=True).declares_pushforward
    synced = convert_sync_batchnorm(G)
    assert not GANClosure(synced, D, LOSSES.get("ns"), [], real, z, {}, pushforward=True).declares_pushforward
    assert not GANClosure(G, D, LOSSES.get("ns"), [], real, z, {}, autocast=contextlib.nullcontext,
                          pushforward=True).declares_pushforward


class _AllReducedNorm(torch.nn.BatchNorm1d):
    """A module that declares its forward pass cannot be replayed locally."""

    supports_forward_tangents = False


@pytest.mark.parametrize("veto", [_AllReducedNorm, torch.nn.SyncBatchNorm])
def test_modules_veto_the_pushforward_by_a_declared_fact(veto):
    """The closure reads ``supports_forward_tangents`` (and knows torch's SyncBatchNorm); it imports no training
    code to decide."""
    G, D, real, z = _small_gan()
    G.add_module("vetoing", veto(2))  # anywhere among G's modules
    assert not supports_forward_tangents(G)
    assert not GANClosure(G, D, LOSSES.get("ns"), [], real, z, {}, pushforward=True).declares_pushforward
    assert not GANClosure(G, D, LOSSES.get("ns"), [], real, z, {}, pushforward=False).declares_pushforward


def test_which_optimizers_ask_for_the_pushforward():
    """CGD and ACGD ask by default (their D_yx products go through G's samples); consensus and SGA never (no such
    products), lookahead asks when its inner method does."""
    G, D, _, _ = _small_gan()
    players = [list(G.parameters()), list(D.parameters())]
    assert build("cgd", players).wants_pushforward and build("acgd", players).wants_pushforward
    assert not build("acgd", players, forward_mode=False).wants_pushforward
    assert not build("sga", players, forward_mode=True).wants_pushforward
    assert not build("consensus", players, forward_mode=True).wants_pushforward
    assert build("lookahead", players, inner="acgd").wants_pushforward
    assert not build("adam", players).wants_pushforward


def test_closure_declares_the_logits_for_gauss_newton():
    """G reaches its loss through D(G(z)), D through D(x) and D(G(z)): the outputs newton's Gauss–Newton
    curvature reads, complete once D's loss is computed; a GN step through the closure moves both players."""
    G, D = make_models()
    real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    losses = GANClosure(G, D, LOSSES.get("ns"), [], real, z, {})()
    assert list(losses.outputs) == [0]
    losses[1]
    d_real, d_fake = losses.outputs[1]
    assert losses.outputs[0][0] is d_fake
    # the losses are functions of these very tensors (D has dropout: a fresh forward pass would differ)
    g_real, g_fake = torch.autograd.grad(losses[1], [d_real, d_fake], retain_graph=True)
    assert d_real.shape[0] == d_fake.shape[0] == 8 and g_real.abs().sum() > 0 and g_fake.abs().sum() > 0
    assert torch.autograd.grad(losses[0], d_fake)[0].abs().sum() > 0
    before = [p.detach().clone() for p in [*G.parameters(), *D.parameters()]]
    opt = build("newton", [list(G.parameters()), list(D.parameters())], curvature="gauss-newton", max_iter=5)
    opt.step(GANClosure(G, D, LOSSES.get("ns"), [], real, z, {}))
    moved = [not torch.equal(a, b) for a, b in zip(before, [*G.parameters(), *D.parameters()])]
    assert any(moved[: len(list(G.parameters()))]) and any(moved[len(list(G.parameters())):])


# ----------------------------------------------------------------------------- DiffAugment (Zhao et al. 2020)
def _augmented_batch():
    G, D = make_models()
    data = torch.Generator().manual_seed(3)
    real, z = torch.rand(8, 1, 28, 28, generator=data) * 2 - 1, torch.randn(8, 8, generator=data)
    return G, D, real, z


def _offsets(seed, n=8):
    """The brightness offsets a BatchAugment stream with ``seed`` draws: u − 0.5, u ~ U[0, 1) (float32)."""
    return (torch.rand(n, generator=torch.Generator().manual_seed(seed)) - 0.5).view(n, 1, 1, 1)


def test_discriminator_and_penalties_see_the_augmented_images():
    """Policy ``brightness``: D's inputs are G(z) + b_fake, x + b_real and, for R1, x + b_real again (the penalty
    differentiates D∘T at the un-augmented reals); b_real and b_fake are independent draws."""
    G, D, real, z = _augmented_batch()
    batch = DiffAugment("brightness", seed=4).for_batch()
    seen = []
    D.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    losses = GANClosure(G, D, LOSSES.get("ns"), [build_penalty("r1", 1.0)], real, z, {}, augment=batch)()
    losses[1]
    fake_in, real_in, penalty_in = seen
    b_real, b_fake = _offsets(batch.seeds[0]), _offsets(batch.seeds[1])
    assert not torch.equal(b_real, b_fake)
    assert torch.equal(real_in, real + b_real) and torch.equal(penalty_in, real + b_real)
    assert torch.equal(fake_in, G(z).detach() + b_fake)


def test_generator_gradient_flows_through_the_augmentation():
    """∇_G loss_G with the paper's policy is nonzero and equals autograd through the explicit D(T(G(z)))."""
    G, D, real, z = _augmented_batch()
    batch = DiffAugment(seed=4).for_batch()
    params = list(G.parameters())
    torch.manual_seed(9)  # D's dropout masks
    got = torch.autograd.grad(GANClosure(G, D, LOSSES.get("ns"), [], real, z, {}, augment=batch)()[0], params)
    torch.manual_seed(9)
    d_fake = D(batch.fake(G(z)))
    want = torch.autograd.grad(LOSSES.get("ns")(d_fake.detach(), d_fake)[0], params)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert sum(float(g.abs().sum()) for g in got) > 0


def test_augmented_closure_replays_identically():
    """Re-evaluating the closure (as extrapolation, finite differences or zeroth-order estimates do) with the same
    global random state gives the same losses to the bit: T's parameters belong to the batch, not the call."""
    G, D, real, z = _augmented_batch()
    closure = GANClosure(G, D, LOSSES.get("ns"), [build_penalty("gp", 1.0)], real, z, {},
                         augment=DiffAugment(seed=4).for_batch())
    values = []
    for _ in range(2):
        torch.manual_seed(9)
        values.append([float(loss.detach()) for loss in closure()])
    assert values[0] == values[1]


def augmented_eager_closure(G, D, loss_fn, penalties, real, z, batch):
    """The reference with augmentation: every term on D∘T, penalties on D∘T_real at the un-augmented images."""
    critic = Augmented(D, batch.real)

    def closure():
        fake = G(z)
        d_fake = D(batch.fake(fake))
        d_real = D(batch.real(real))
        loss_g, loss_d = loss_fn(d_real, d_fake)
        for penalty in penalties:
            loss_d = loss_d + penalty(critic, real, fake)
        return [loss_g, loss_d]

    return closure


@pytest.mark.parametrize(("method", "hp", "penalty"), [
    ("adam", {"scheme": "alternating", "lr": 1e-3}, "r1"),  # reuses G(z) for G's evaluation
    ("extragradient", {"lr": 1e-3}, "gp"),  # evaluates at the extrapolated point
])
def test_lazy_augmented_closure_matches_the_explicit_composition_bit_for_bit(method, hp, penalty):
    G0, D0 = make_models()
    runs = []
    for kind in ("eager", "lazy"):
        G, D = copy.deepcopy(G0), copy.deepcopy(D0)
        augment = DiffAugment(seed=11)
        opt = build(method, [list(G.parameters()), list(D.parameters())], buffers=[*G.buffers(), *D.buffers()], **hp)
        data_gen = torch.Generator().manual_seed(1)
        torch.manual_seed(2)
        for _ in range(3):
            real = torch.rand(16, 1, 28, 28, generator=data_gen) * 2 - 1
            z = torch.randn(16, 8, generator=data_gen)
            penalties, batch = [build_penalty(penalty, 10.0)], augment.for_batch()
            closure = (augmented_eager_closure(G, D, LOSSES.get("ns"), penalties, real, z, batch) if kind == "eager"
                       else GANClosure(G, D, LOSSES.get("ns"), penalties, real, z, {}, augment=batch))
            opt.step(closure)
        runs.append([*G.parameters(), *D.parameters(), *G.buffers()])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_forward_mode_products_through_the_augmentation():
    """CGD with the pushforward G(z) (T is part of the loss) takes the steps of CGD without it, to rounding."""
    results = []
    for forward_mode in (False, True):
        G, D = (m.double() for m in make_models())
        data = torch.Generator().manual_seed(3)
        real = (torch.rand(8, 1, 28, 28, generator=data) * 2 - 1).double()
        z = torch.randn(8, 8, generator=data).double()
        batch = DiffAugment(seed=4).for_batch()
        opt = build("cgd", [list(G.parameters()), list(D.parameters())], buffers=[*G.buffers(), *D.buffers()],
                    lr=0.05, tol=1e-10, forward_mode=forward_mode)
        torch.manual_seed(1)
        for _ in range(2):
            opt.step(GANClosure(G, D, LOSSES.get("minimax"), [], real, z, {}, pushforward=opt.wants_pushforward,
                                augment=batch))
        results.append([p.detach().clone() for p in [*G.parameters(), *D.parameters()]])
    assert all(torch.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(*results, strict=True))
