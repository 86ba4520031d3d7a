"""The one set of validators: canonical values back, ``key: expected ..., got ...`` errors otherwise."""

import math

import pytest

from saddlepoint import checks
from saddlepoint.checks import Option
from saddlepoint.errors import ConfigError


@pytest.mark.parametrize("call, value", [
    (lambda v: checks.number("k", v), 3),
    (lambda v: checks.number("k", v, low=0, low_open=True), 0.5),
    (lambda v: checks.number("k", v, parse=True), "1e-4"),
    (lambda v: checks.integer("k", v, low=1), 2.0),
    (lambda v: checks.integer("k", v, parse=True), "1e3"),
    (lambda v: checks.boolean("k", v, parse=True), "Yes"),
    (lambda v: checks.choice("k", v, ("a", "b"), lower=True), "B"),
    (lambda v: checks.string("k", v), "x"),
])
def test_valid_values_come_back_canonical(call, value):
    out = call(value)
    assert out in (3.0, 0.5, 1e-4, 2, 1000, True, "b", "x") and type(out) in (float, int, bool, str)


@pytest.mark.parametrize("call, value, expected", [
    (lambda v: checks.number("a.b", v), True, "a.b: expected a finite number, got True"),
    (lambda v: checks.number("a.b", v), math.inf, "a finite number"),
    (lambda v: checks.number("a.b", v, low=0), -1, "a non-negative number"),
    (lambda v: checks.number("a.b", v, low=0, low_open=True), 0, "a positive number"),
    (lambda v: checks.number("a.b", v, low=0, high=1, low_open=True), 2, r"a number in (0, 1]"),
    (lambda v: checks.integer("a.b", v, low=1), 0, "a positive integer"),
    (lambda v: checks.integer("a.b", v, low=2), 1, "an integer ≥ 2"),
    (lambda v: checks.integer("a.b", v), 1.5, "an integer"),
    (lambda v: checks.integer("a.b", v), False, "an integer"),
    (lambda v: checks.boolean("a.b", v), "true", "true or false"),
    (lambda v: checks.boolean("a.b", v), 1, "true or false"),
    (lambda v: checks.choice("a.b", v, ("x", "y")), "z", "unknown value 'z'; valid: x, y"),
    (lambda v: checks.string("a.b", v, empty=False), " ", "a non-empty string"),
    (lambda v: checks.mapping("a.b", v), [1], "a mapping"),
])
def test_invalid_values_name_the_key_and_what_was_expected(call, value, expected):
    with pytest.raises(ConfigError) as err:
        call(value)
    assert str(err.value).startswith("a.b: ") and expected in str(err.value)


def test_none_is_accepted_only_when_asked():
    assert checks.number("k", None, none=True) is None and checks.boolean("k", None, none=True) is None
    with pytest.raises(ConfigError, match="or none"):
        checks.integer("k", "x", none=True)


def test_like_checks_against_a_default():
    assert checks.like("k", 3.0, 1) == 3 and isinstance(checks.like("k", 3.0, 1), int)
    assert checks.like("k", 0.5, 1) == 0.5 and checks.like("k", True, False) is True
    assert checks.like("k", "relu", "tanh") == "relu" and checks.like("k", [1], None) == [1]
    for value, default in ((True, 1.0), ("x", 1.0), (1, False), (1, "relu")):
        with pytest.raises(ConfigError, match="k: expected"):
            checks.like("k", value, default)


def test_declared_options_fill_defaults_and_reject_unknown_names():
    declared = {"one_sided": Option(False, checks.boolean), "target": Option(1.0, checks.non_negative)}
    assert checks.options("p", {"one_sided": True}, declared) == {"one_sided": True, "target": 1.0}
    assert checks.options("p", {"target": 2}, declared, fill=False) == {"target": 2.0}
    with pytest.raises(ConfigError, match=r"p: unknown option\(s\) side; valid: one_sided, target"):
        checks.options("p", {"side": 1}, declared)
    with pytest.raises(ConfigError, match="p.target: expected a non-negative number"):
        checks.options("p", {"target": -1}, declared)
