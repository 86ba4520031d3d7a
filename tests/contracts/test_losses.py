"""Contract suite over every registered loss and penalty: finite values and gradients on a small G/D game;
declared options validated (a wrong type and an unknown option are config errors naming the key).

Parametrised over the registries: a loss or penalty registered with its facts is covered with no edit.
"""

from __future__ import annotations

import pytest
import torch

from saddlepoint.config import build_config
from saddlepoint.errors import ConfigError
from saddlepoint.losses import LOSSES, PENALTIES, Penalty, build_loss, build_penalty, penalty_options
from saddlepoint.models import build_models

LOSS_NAMES = LOSSES.names()
PENALTY_NAMES = PENALTIES.names()
WRONG = object()  # no validator accepts it


def game(seed: int = 0):
    """A tiny G/D pair on 2-D points and one batch: ``(G, D, real, fake)`` (fake still attached to G)."""
    torch.manual_seed(seed)
    G, D = build_models("mlp", (2,), 2, width=8, depth=2)
    real = torch.randn(16, 2)
    fake = G(torch.randn(16, 2))
    return G, D, real, fake


def finite_grads(loss: torch.Tensor, params: list[torch.Tensor], **kw) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True, **kw)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def declared(registry, name: str) -> dict:
    return dict(registry.facts(name).get("options", {}))


# ---------------------------------------------------------------------------------- losses
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_values_and_gradients_are_finite(name: str) -> None:
    G, D, real, fake = game()
    loss_g, loss_d = build_loss(name)(D(real), D(fake))
    assert loss_g.dim() == 0 and loss_d.dim() == 0
    assert torch.isfinite(loss_g) and torch.isfinite(loss_d)
    for loss, module in ((loss_g, G), (loss_d, D)):
        grads = finite_grads(loss, list(module.parameters()), retain_graph=True)
        assert all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)  # the player's loss depends on its parameters


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_options_are_validated(name: str) -> None:
    options = declared(LOSSES, name)
    for option in options:
        with pytest.raises(ConfigError, match=f"loss.{option}"):
            build_loss(name, **{option: WRONG})
    with pytest.raises(ConfigError, match="no_such_option"):
        build_loss(name, no_such_option=1)
    with pytest.raises(ConfigError, match="loss.no_such_option"):
        build_config({"loss": {"name": name, "no_such_option": 1}})
    assert build_config({"loss": {"name": name}}).loss.extra == {k: o.default for k, o in options.items()}


# ---------------------------------------------------------------------------------- penalties
@pytest.mark.parametrize("name", PENALTY_NAMES)
def test_penalty_values_and_gradients_are_finite(name: str) -> None:
    G, D, real, fake = game()
    penalty = build_penalty(name)
    assert isinstance(penalty, Penalty) and penalty.weight >= 0
    value = penalty(D, real, fake)
    assert value.dim() == 0 and torch.isfinite(value)
    params = list(D.parameters())
    if value.requires_grad:
        grads = finite_grads(value, params, create_graph=True)
        assert all(torch.isfinite(g).all() for g in grads)
        assert all(p.grad is None for p in G.parameters())  # a penalty never reaches G
    penalty.after_step(D)
    assert all(torch.isfinite(p).all() for p in params)


@pytest.mark.parametrize("name", PENALTY_NAMES)
def test_penalty_options_are_declared_and_validated(name: str) -> None:
    options = declared(PENALTIES, name)
    settings = penalty_options(name)
    assert set(settings) == {"weight", *options}
    assert settings["weight"] == PENALTIES.facts(name)["weight"]  # the default weight is declared
    assert build_penalty(name).options == {k: o.default for k, o in options.items()}
    for option in options:
        with pytest.raises(ConfigError, match=f"loss.penalty.{name}.{option}"):
            penalty_options(name, {option: WRONG})
        with pytest.raises(ConfigError, match=option):
            build_penalty(name, **{option: WRONG})
    for bad in (-1.0, True, float("nan")):
        with pytest.raises(ConfigError, match="weight"):
            build_penalty(name, bad)
    with pytest.raises(ConfigError, match=f"loss.penalty.{name}: unknown option.*no_such_option"):
        penalty_options(name, {"no_such_option": 1})
    with pytest.raises(ConfigError, match="no_such_option"):
        build_config({"loss": {"penalty": {name: {"no_such_option": 1}}}})
    cfg = build_config({"loss": {"penalty": [name]}})
    assert cfg.loss.penalty == {name: settings}
    assert getattr(cfg.loss, f"{name}_weight") == settings["weight"]
