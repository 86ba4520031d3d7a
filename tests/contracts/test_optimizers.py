"""The game-optimizer contract, for EVERY registered optimizer (a newly registered one is covered with no edit).

On a tiny GAN (MLP generator with BatchNorm, MLP discriminator, non-saturating losses, fixed batches):
state_dict round trips give bit-identical next steps; hyper-parameters may be given per player; unknown
hyper-parameters are config errors naming the key; a float16 step whose scaled gradients overflow is undone
entirely; the cost counters grow; the declared needs are booleans.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.optim import OPTIMIZERS, LossScaler, attach_scaler, build

from ..optim.toy_games import tree_equal, without

NAMES = OPTIMIZERS.names()
REAL = torch.randn(32, 2, generator=torch.Generator().manual_seed(1)) + 2.0
Z = torch.randn(32, 2, generator=torch.Generator().manual_seed(2))


class TinyGAN:
    """Two players: G (with a BatchNorm, so there are buffers) and D."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.G = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2))
        self.D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    @property
    def players(self) -> list[list[torch.Tensor]]:
        return [list(self.G.parameters()), list(self.D.parameters())]

    @property
    def buffers(self) -> list[torch.Tensor]:
        return list(self.G.buffers())

    def tensors(self) -> list[torch.Tensor]:
        return [t.detach().clone() for t in [*self.G.parameters(), *self.D.parameters(), *self.G.buffers()]]

    def closure(self, fp16: bool = False):
        def closure() -> list[torch.Tensor]:
            with torch.autocast("cpu", dtype=torch.float16, enabled=fp16):
                fake = self.G(Z)
                d_fake, d_real = self.D(fake), self.D(REAL)
            d_fake, d_real = d_fake.float(), d_real.float()
            loss_d = nn.functional.softplus(-d_real).mean() + nn.functional.softplus(d_fake).mean()
            return [nn.functional.softplus(-d_fake).mean(), loss_d]

        return closure

    def build(self, name: str, **hp: Any):
        return build(name, self.players, buffers=self.buffers, **hp)


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def per_player_key(name: str) -> str | None:
    """A numeric hyper-parameter every player has (``lr`` for every method shipped)."""
    hp = TinyGAN().build(name).hp[0]
    if "lr" in hp:
        return "lr"
    return next((k for k, v in hp.items() if isinstance(v, float) and v > 0), None)


# ----------------------------------------------------------------------------- (a) state round trip
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_an_identical_next_step(name):
    a = TinyGAN()
    opt_a = a.build(name)
    for _ in range(3):
        opt_a.step(a.closure())
    saved = copy.deepcopy(opt_a.state_dict())
    b = TinyGAN(seed=1)  # other weights, overwritten by a's
    b.G.load_state_dict(a.G.state_dict())
    b.D.load_state_dict(a.D.state_dict())
    opt_b = b.build(name)
    opt_b.load_state_dict(saved)
    for _ in range(2):
        assert opt_a.step(a.closure()) == opt_b.step(b.closure())
        assert same(a.tensors(), b.tensors())
    assert tree_equal(opt_a.state_dict(), opt_b.state_dict())


# ----------------------------------------------------------------------------- (b) per-player hyper-parameters
@pytest.mark.parametrize("name", NAMES)
def test_hyper_parameters_per_player(name):
    key = per_player_key(name)
    if key is None:
        pytest.skip(f"{name} has no per-player numeric hyper-parameter")
    value = TinyGAN().build(name).hp[0][key]
    results = {}
    for label, given in {"scalar": value, "same": [value, value], "different": [value, 3 * value]}.items():
        game = TinyGAN()
        opt = game.build(name, **{key: given})
        assert [opt.hp[i][key] for i in range(2)] == (given if isinstance(given, list) else [given] * 2)
        for _ in range(2):
            opt.step(game.closure())
        results[label] = game.tensors()
    assert same(results["scalar"], results["same"])
    assert not same(results["scalar"], results["different"])
    with pytest.raises(ConfigError, match=f"{key}.*one per player"):
        TinyGAN().build(name, **{key: [value] * 3})


# ----------------------------------------------------------------------------- (c) unknown keys
@pytest.mark.parametrize("name", NAMES)
def test_unknown_hyper_parameter_is_a_config_error_naming_it(name):
    with pytest.raises(ConfigError, match="no_such_setting"):
        TinyGAN().build(name, no_such_setting=1.0)


# ----------------------------------------------------------------------------- (d) float16 skip undone
@pytest.mark.parametrize("name", NAMES)
def test_overflowing_float16_step_is_undone(name):
    game = TinyGAN()
    opt = game.build(name)
    scaler = LossScaler(init_scale=2.0**8)
    attach_scaler(opt, scaler)
    for _ in range(2):  # populate the state (moments, past gradients, warm starts, counters)
        opt.step(game.closure(fp16=True))
    before, state, norms, steps = game.tensors(), opt.state_dict(), list(opt.last_grad_norms), opt.step_count
    scaler.scale = 2.0**40  # float16 gradients of the scaled losses overflow
    losses = opt.step(game.closure(fp16=True))
    assert opt.last_step_skipped
    assert all(abs(v) < 100 for v in losses)  # the unscaled losses are still reported
    assert same(game.tensors(), before)
    after = opt.state_dict()
    assert after["scaler"]["scale"] == 2.0**39 and after["scaler"]["skipped"] == state["scaler"]["skipped"] + 1
    assert tree_equal(without(after, "scaler", "counts"), without(state, "scaler", "counts"))
    assert opt.step_count == steps and opt.last_grad_norms == norms


# ----------------------------------------------------------------------------- (e) cost counts
@pytest.mark.parametrize("name", NAMES)
def test_cost_counts_grow(name):
    game = TinyGAN()
    opt = game.build(name)
    before = dict(opt.counts)
    opt.step(game.closure())
    assert opt.counts["closure"] > before.get("closure", 0)
    assert sum(opt.counts.values()) > sum(before.values())
    assert all(opt.counts[k] >= v for k, v in before.items())


# ----------------------------------------------------------------------------- declared needs, collaborators
@pytest.mark.parametrize("name", NAMES)
def test_needs_are_declared_and_collaborators_injected(name):
    game = TinyGAN()
    opt = game.build(name)
    assert isinstance(opt.requires_double_backward, bool) and isinstance(opt.wants_pushforward, bool)
    calls = []

    def reduce(tensors):
        calls.append(len(tensors))
        return [t.clone() for t in tensors]

    opt.configure(reduce=reduce)
    reference = TinyGAN()
    ref_opt = reference.build(name)
    opt.step(game.closure())
    ref_opt.step(reference.closure())
    assert calls  # every gradient (and product) went through the injected reduction
    assert same(game.tensors(), reference.tensors())  # an identity reduction changes nothing
