"""The registry: decorator and direct registration, aliases, facts, error messages."""

from __future__ import annotations

import pytest

from saddlepoint.errors import ConfigError
from saddlepoint.registry import Registry


def test_decorator_and_direct_forms_with_aliases_and_facts() -> None:
    reg: Registry = Registry("widget")

    @reg.register("alpha", "a", size=3)
    def alpha() -> str:
        return "alpha"

    def beta() -> str:
        return "beta"

    assert reg.register("beta", beta, "b", size=None) is beta
    reg.register("gamma")(len)  # no facts
    assert reg.get("a") is alpha and reg.get("b") is beta
    assert reg.facts("alpha") == {"size": 3} and reg.facts("a") == {"size": 3}
    assert reg.fact("beta", "size", 7) is None and reg.fact("gamma", "size", 7) == 7
    assert reg.canonical("b") == "beta" and reg.aliases("alpha") == ["a"]
    assert reg.registered() == ["alpha", "beta", "gamma"]
    assert [name for name, _ in reg.items()] == ["alpha", "beta", "gamma"]
    assert reg.names() == ["a", "alpha", "b", "beta", "gamma"] and list(reg) == reg.names()
    assert "a" in reg and "delta" not in reg
    with pytest.raises(TypeError):
        reg.facts("alpha")["size"] = 4  # read-only


def test_errors() -> None:
    reg: Registry = Registry("widget")
    reg.register("alpha", "a")(object)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("b", "a")(object)
    assert "b" not in reg  # nothing half-registered
    with pytest.raises(ConfigError, match="^x.y: unknown widget 'z'; valid: a, alpha$"):
        reg.get("z", "x.y")
    with pytest.raises(ConfigError, match="unknown widget"):
        reg.facts("z")
