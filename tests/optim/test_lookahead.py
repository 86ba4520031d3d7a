"""Lookahead–minmax around any game optimizer (saddlepoint.optim.lookahead): rates on bilinear games, slow
BatchNorm buffers, state, configuration, and the collaborators and needs it forwards to its inner optimizer."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.optim import build

from .toy_games import DT, bilinear, bn_setup, direction_norms, round_trip, total_norm


# ---------------------------------------------------------------------------------------- lookahead
@pytest.mark.parametrize("k, alpha", [(5, 0.5), (3, 0.3), (10, 0.5)])
def test_lookahead_makes_simultaneous_gda_converge(k, alpha):
    # Chavdarova et al. 2021: on one singular direction GDA is z ← (1 + ih) z (|1 + ih| > 1), so one
    # lookahead cycle multiplies z by 1 − α + α(1 + ih)^k, of modulus < 1 for suitable k, α.
    sigmas = (1.0, 0.6, 0.3)
    lr = 0.1
    A, U, V, x, y, closure = bilinear(sigmas, seed=7)
    opt = build("lookahead", [[x], [y]], inner="sgd", lr=lr, k=k, alpha=alpha)
    factors = torch.tensor([abs(1 - alpha + alpha * (1 + 1j * lr * s) ** k) for s in sigmas], dtype=DT)
    assert (factors < 1).all()
    before = direction_norms(U, V, x, y)
    n0 = total_norm(x, y)
    for _cycle in range(60):
        for _ in range(k):
            opt.step(closure)
        after = direction_norms(U, V, x, y)
        torch.testing.assert_close(after / before, factors, rtol=1e-10, atol=0)
        before = after
    assert total_norm(x, y) < n0 * float(factors.max()) ** 50

    # GDA alone diverges on the same game
    A, U, V, x, y, closure = bilinear(sigmas, seed=7)
    n0 = total_norm(x, y)
    gda = build("sgd", [[x], [y]], lr=lr)
    for _ in range(60 * k):
        gda.step(closure)
    assert total_norm(x, y) > n0


def test_lookahead_around_extragradient():
    sigmas = (1.0, 0.5)
    lr, k, alpha = 0.3, 4, 0.5
    A, U, V, x, y, closure = bilinear(sigmas, seed=8)
    opt = build("lookahead", [[x], [y]], inner="extragradient", base="sgd", lr=lr, k=k, alpha=alpha)
    assert type(opt.inner).__name__ == "Extragradient"
    factors = torch.tensor(
        [abs(1 - alpha + alpha * (1 + 1j * lr * s - (lr * s) ** 2) ** k) for s in sigmas], dtype=DT
    )
    before = direction_norms(U, V, x, y)
    for _ in range(10):
        for _ in range(k):
            opt.step(closure)
        after = direction_norms(U, V, x, y)
        torch.testing.assert_close(after / before, factors, rtol=1e-10, atol=0)
        before = after
    assert opt.counts["grad"] == 10 * k * 4  # shared with the inner optimizer
    assert opt.hp[0]["lr"] == lr  # the inner hyper-parameters


def test_lookahead_treats_batchnorm_buffers_like_weights():
    k, alpha = 3, 0.4
    net, w, make_closure = bn_setup()
    ref_net, ref_w = copy.deepcopy(net), w.detach().clone().requires_grad_()
    init_params = [p.detach().clone() for p in list(net.parameters()) + [w]]
    init_buffers = [b.detach().clone() for b in net.buffers()]

    opt = build("lookahead", [net, [w]], buffers=list(net.buffers()), inner="sgd", lr=0.05, k=k, alpha=alpha)
    ref = build("sgd", [ref_net, [ref_w]], buffers=list(ref_net.buffers()), lr=0.05)
    for _ in range(k):
        opt.step(make_closure(net, w))
        ref.step(make_closure(ref_net, ref_w))
    # after one cycle: slow + α (fast − slow), for weights and floating buffers alike
    for p, p0, fast in zip(
        list(net.parameters()) + [w], init_params, list(ref_net.parameters()) + [ref_w], strict=True
    ):
        torch.testing.assert_close(p.detach(), p0 + alpha * (fast.detach() - p0), rtol=1e-12, atol=1e-14)
    bn, ref_bn = net[1], ref_net[1]
    names = ["running_mean", "running_var"]
    for name, b0 in zip(names, init_buffers[:2], strict=True):
        fast = getattr(ref_bn, name)
        assert not torch.equal(fast, b0)
        torch.testing.assert_close(getattr(bn, name), b0 + alpha * (fast - b0), rtol=1e-12, atol=1e-14)
    assert int(bn.num_batches_tracked) == k  # integer buffer: fast value, not interpolated


def test_lookahead_buffers_with_two_call_inner_method():
    # inner extragradient calls the closure twice per step; BN statistics still move once per step
    net, w, make_closure = bn_setup(1)
    opt = build("lookahead", [net, [w]], buffers=list(net.buffers()), inner="extragradient", k=2)
    for _ in range(4):
        opt.step(make_closure(net, w))
    assert int(net[1].num_batches_tracked) == 4
    assert opt.counts["closure"] == 8


# ---------------------------------------------------------------------------------------- state
@pytest.mark.parametrize(
    "name, hp",
    [
        ("lookahead", {"inner": "adam", "lr": 0.01, "k": 3}),
        ("lookahead", {"inner": "extragradient", "base": "adam", "lr": 0.01, "k": 3, "alpha": 0.3}),
        ("lookahead", {"inner": "optimistic", "base": "sgd", "lr": 0.1, "k": 2}),
    ],
)
def test_lookahead_state_dict_round_trip(name, hp):
    round_trip(name, 4, hp)  # for lookahead with k = 3: saved mid-cycle, the sync falls in the 3 steps


def test_lookahead_state_round_trip_with_batchnorm_buffers():
    round_trip("lookahead", 2, {"inner": "sgd", "lr": 0.05, "k": 4, "alpha": 0.5}, with_bn=True)


def test_lookahead_state_dict_contents():
    A, U, V, x, y, closure = bilinear((1.0,))
    opt = build("lookahead", [[x], [y]], inner="optimistic", k=3)
    opt.step(closure)
    state = opt.state_dict()
    assert state["state"]["counter"] == 1
    assert len(state["state"]["slow"]) == 2
    assert state["inner"]["method"] == "Optimistic"
    assert "prev_step" in state["inner"]["state"]["players"][0]
    with pytest.raises(ConfigError):
        opt.load_state_dict({k: v for k, v in state.items() if k != "inner"})


# ---------------------------------------------------------------------------------------- configuration
def test_lookahead_configuration_errors():
    A, U, V, x, y, closure = bilinear((1.0,))
    players = [[x], [y]]
    with pytest.raises(ConfigError, match="inner"):
        build("lookahead", players, inner="nope")
    with pytest.raises(ConfigError, match="inner"):
        build("lookahead", players, inner="lookahead")
    with pytest.raises(ConfigError, match="optim.k"):
        build("lookahead", players, k=0)
    with pytest.raises(ConfigError, match="alpha"):
        build("lookahead", players, alpha=0.0)
    with pytest.raises(ConfigError, match="alpha"):
        build("lookahead", players, alpha=[0.5, 0.5])
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        build("lookahead", players, inner="sgd", beta1=0.5)


def test_lookahead_defaults():
    A, U, V, x, y, closure = bilinear((1.0,))
    opt = build("lookahead", [[x], [y]])
    assert opt.shared == {"inner": "adam", "k": 5, "alpha": 0.5}
    assert type(opt.inner).__name__ == "AdamGDA"


def test_lookahead_accepts_parameter_generators():
    net = nn.Linear(2, 2).to(DT)
    v = torch.zeros(2, dtype=DT, requires_grad=True)
    opt = build("lookahead", [net.parameters(), [v]], inner="sgd", k=2)
    assert len(opt.players[0]) == 2 and len(opt.inner.players[0]) == 2
    x = torch.ones(3, 2, dtype=DT)
    for _ in range(2):
        opt.step(lambda: [(net(x) @ v).sum(), -(net(x) @ v).sum()])
    assert torch.isfinite(net.weight).all() and torch.isfinite(v).all()


# ---------------------------------------------------------------------------------------- collaborators, needs
def test_lookahead_forwards_configure_and_reports_its_inner_needs():
    from saddlepoint.optim import LossScaler, attach_scaler

    A, U, V, x, y, closure = bilinear((1.0,))
    opt = build("lookahead", [[x], [y]], inner="cgd", k=2)
    assert opt.requires_double_backward and opt.wants_pushforward
    assert not build("lookahead", [[x], [y]], inner="adam").requires_double_backward

    def reduce(tensors):
        return [t.clone() for t in tensors]

    scaler = LossScaler()
    opt.configure(reduce=reduce, scaler=scaler)
    assert opt.inner.reduce is reduce and opt.inner.scaler is scaler and opt.scaler is scaler
    attach_scaler(opt, None)  # keeps the reduction
    assert opt.inner.scaler is None and opt.inner.reduce is reduce
    opt.configure()
    assert opt.inner.reduce is None and opt.reduce is None


def test_lookahead_reports_its_inner_diagnostics_and_batches():
    """The log reads ``stats()`` and ``last_layer_norms``: around a zeroth-order inner method they are the inner
    method's (forward passes, per-layer norms); the two-batch need of Hamiltonian descent is forwarded."""
    A, U, V, x, y, closure = bilinear((1.0,))
    opt = build("lookahead", [[x], [y]], inner="sgd", k=2, lr=0.01, grad="zo",
                zo={"directions": "coordinate", "mu": 1e-5})
    opt.step(closure)
    n = x.numel() + y.numel()
    assert opt.stats()["zo_forward"] == 2 * n
    assert [float(t[0]) for t in opt.last_layer_norms] == pytest.approx(opt.last_grad_norms)
    assert build("lookahead", [[x], [y]], inner="hamiltonian").wants_independent_batches
    assert not build("lookahead", [[x], [y]], inner="hamiltonian", independent_batches=False).wants_independent_batches
    assert not build("lookahead", [[x], [y]], inner="adam").wants_independent_batches
