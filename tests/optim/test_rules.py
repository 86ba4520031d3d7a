"""The one registry of per-player update rules (saddlepoint.optim.rules), parametrised over every registered rule:
each is a first-order optimizer of its name and, unless it looks ahead, a ``base`` of the extrapolation methods
and of consensus/SGA, with its defaults stated once."""

from __future__ import annotations

import pytest
import torch

from saddlepoint.errors import ConfigError
from saddlepoint.optim import OPTIMIZERS, RULES, build
from saddlepoint.optim.extrapolation import TransformGame
from saddlepoint.optim.rules import build_rule, rule_names
from saddlepoint.optim.second_order import FieldMethod

DT = torch.float64
STEP_BASES = rule_names(look_ahead=False)
BASE_METHODS = ["extragradient", "past-extragradient", "optimistic", "consensus", "sga"]


def quadratic_game():
    """f_x = ½‖x − 1‖² + xᵀy, f_y = ½‖y + 1‖² − xᵀy: strongly monotone, one step of any rule moves both players."""
    x = torch.zeros(3, dtype=DT, requires_grad=True)
    y = torch.zeros(3, dtype=DT, requires_grad=True)

    def closure():
        return [0.5 * ((x - 1) ** 2).sum() + x @ y, 0.5 * ((y + 1) ** 2).sum() - x @ y]

    return [[x], [y]], closure


def test_the_five_rules_and_their_defaults():
    assert {"sgd", "momentum", "nesterov", "adam", "rmsprop"} <= set(RULES.names())
    assert RULES.get("adam").defaults == {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "eps": 1e-8}
    assert RULES.get("rmsprop").defaults == {"lr": 5e-5, "alpha": 0.99, "eps": 1e-8}
    assert RULES.get("momentum").defaults == RULES.get("nesterov").defaults == {"lr": 1e-2, "momentum": 0.9}
    assert RULES.get("sgd").defaults == {"lr": 1e-2}
    assert "nesterov" not in rule_names(look_ahead=False) and rule_names() == RULES.names()


@pytest.mark.parametrize("name", RULES.names())
def test_every_rule_is_a_first_order_optimizer_with_its_defaults(name):
    rule = RULES.get(name)
    assert "lr" in rule.defaults
    method = OPTIMIZERS.get(name)
    assert type(method.transform) is rule
    assert {k: method.defaults[k] for k in rule.defaults} == rule.defaults
    players, closure = quadratic_game()
    opt = build(name, players)
    assert opt.hp[0]["lr"] == rule.defaults["lr"]
    before = [p.detach().clone() for ps in players for p in ps]
    opt.step(closure)
    assert all(not torch.equal(b, p) for b, p in zip(before, [p for ps in players for p in ps], strict=True))


@pytest.mark.parametrize("method", BASE_METHODS)
@pytest.mark.parametrize("name", RULES.names())
def test_methods_take_every_rule_that_does_not_look_ahead_as_base(method, name):
    players, closure = quadratic_game()
    if RULES.get(name).looks_ahead:  # its gradient would be taken at θ, not where it asks: refused
        with pytest.raises(ConfigError, match="optim.base"):
            build(method, players, base=name)
        return
    opt = build(method, players, base=name)
    assert type(opt.transform) is RULES.get(name)
    hp = {k: v for k, v in RULES.get(name).defaults.items() if k != "lr"}
    assert {k: opt.hp[0][k] for k in hp} == hp  # the rule's own defaults
    for _ in range(2):
        opt.step(closure)
    assert all(torch.isfinite(p).all() for ps in players for p in ps)


def test_defaults_are_read_from_the_registry():
    """Adam's and RMSprop's defaults exist once: the methods built on rules read them from the registry."""
    adam, rmsprop = RULES.get("adam").defaults, RULES.get("rmsprop").defaults
    assert {k: TransformGame.defaults[k] for k in adam} == adam
    for cls in (OPTIMIZERS.get("consensus"), OPTIMIZERS.get("sga")):
        assert issubclass(cls, FieldMethod)
        assert cls.defaults["lr"] == 1e-2  # the family's own learning rate, whatever the base
        for rule in (adam, rmsprop, RULES.get("momentum").defaults):
            assert {k: cls.defaults[k] for k in rule if k != "lr"} == {k: v for k, v in rule.items() if k != "lr"}


def test_unknown_rule_is_a_config_error_listing_the_valid_ones():
    with pytest.raises(ConfigError, match=r"optim.base: unknown base rule 'lbfgs'; valid: .*adam"):
        build_rule("lbfgs")
    with pytest.raises(ConfigError, match="nesterov"):
        build_rule("nesterov", look_ahead=False)
    assert type(build_rule("nesterov")) is RULES.get("nesterov")


def test_methods_follow_rules_registered_later():
    """``subscribe``: a listener sees the rules registered so far and every later one (how first_order makes every
    rule an optimizer and consensus/SGA take its hyper-parameters). A local registry: the global one stays as is."""
    from saddlepoint.optim.rules import RuleRegistry, UpdateRule

    registry = RuleRegistry("update rule")
    registry.register("first")(type("First", (UpdateRule,), {}))
    seen = []
    registry.subscribe(lambda name, rule: seen.append((name, rule.__name__)))
    registry.register("second", "alias")(type("Second", (UpdateRule,), {}))
    assert seen == [("first", "First"), ("second", "Second")]
