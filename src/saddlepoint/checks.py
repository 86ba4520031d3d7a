"""The one set of value validators: every config key, option and hyper-parameter is checked with these.

Each validator takes the dotted ``key`` (for the message) and the ``value``, returns the value in its
canonical type, and raises :class:`~saddlepoint.errors.ConfigError` with ``"key: expected ..., got ..."``
otherwise. Booleans are never numbers (``True`` is not ``1`` here), numbers must be finite.

``Option(default, check)`` declares one option of a component (a penalty, a loss, a model); a
mapping of them is validated in one call by :func:`options`, which fills defaults and rejects unknown
names listing the valid ones::

    OPTIONS = {"one_sided": Option(False, boolean), "target": Option(1.0, non_negative)}
    options("loss.penalty.gp", {"one_sided": True}, OPTIONS)  # {"one_sided": True, "target": 1.0}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = [
    "Option",
    "boolean",
    "choice",
    "fail",
    "integer",
    "like",
    "mapping",
    "non_negative",
    "number",
    "options",
    "positive",
    "positive_int",
    "string",
]

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def fail(key: str, expected: str, value: Any) -> ConfigError:
    """The error every validator raises: ``"key: expected <expected>, got <value!r>"`` (return it to raise)."""
    return ConfigError(f"{key}: expected {expected}, got {value!r}")


def _fmt(x: float) -> str:
    return format(x, "g") if isinstance(x, float) else str(x)


def _describe(kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    article = "an" if kind == "integer" else "a"
    if low is not None and high is not None:
        return f"{article} {kind} in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
    if high is None and low == 0:
        return f"a {'positive' if low_open else 'non-negative'} {kind}"
    if high is None and low == 1 and kind == "integer" and not low_open:
        return "a positive integer"
    if low is not None:
        return f"{article} {kind} {'>' if low_open else '≥'} {_fmt(low)}"
    if high is not None:
        return f"{article} {kind} {'<' if high_open else '≤'} {_fmt(high)}"
    return "a finite number" if kind == "number" else "an integer"


def _in_range(x: float, low: float | None, high: float | None, low_open: bool, high_open: bool) -> bool:
    if low is not None and (x <= low if low_open else x < low):
        return False
    return not (high is not None and (x >= high if high_open else x > high))


def _parse_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value.strip().replace("_", ""))
        except ValueError:
            return value
    return value


def number(key: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False, none: bool = False, parse: bool = False) -> float | None:
    """A finite real number (int or float, not bool) in the given bounds, returned as float.

    ``none``: ``None`` is accepted (and returned); ``parse``: numeric strings (``"1e-4"``) are accepted."""
    if value is None and none:
        return None
    x = _parse_number(value) if parse else value
    ok = not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)
    if not ok or not _in_range(x, low, high, low_open, high_open):
        raise fail(key, _describe("number", low, high, low_open, high_open) + (" or none" if none else ""), value)
    return float(x)


def integer(key: str, value: Any, *, low: int | None = None, high: int | None = None, none: bool = False,
            parse: bool = False) -> int | None:
    """An integer (not bool; an integral float such as ``2.0`` or, with ``parse``, ``"1e3"`` is accepted)."""
    if value is None and none:
        return None
    x = _parse_number(value) if parse else value
    ok = not isinstance(x, bool) and (isinstance(x, int) or (isinstance(x, float) and x.is_integer()))
    if not ok or not _in_range(x, low, high, False, False):
        raise fail(key, _describe("integer", low, high, False, False) + (" or none" if none else ""), value)
    return int(x)


def boolean(key: str, value: Any, *, none: bool = False, parse: bool = False) -> bool | None:
    """``True`` or ``False``; with ``parse`` also the words true/false, yes/no, on/off, 1/0 (any case)."""
    if value is None and none:
        return None
    if isinstance(value, bool):
        return value
    if parse and isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise fail(key, "true or false", value)


def choice(key: str, value: Any, choices: Iterable[str], *, none: bool = False, lower: bool = False) -> str | None:
    """One of ``choices`` (``lower``: compared and returned in lower case)."""
    if value is None and none:
        return None
    choices = tuple(choices)
    candidate = value.lower() if lower and isinstance(value, str) else value
    if not isinstance(candidate, str) or candidate not in choices:
        raise ConfigError(f"{key}: unknown value {value!r}; valid: {', '.join(choices)}")
    return candidate


def string(key: str, value: Any, *, none: bool = False, empty: bool = True) -> str | None:
    """A string (``empty=False``: a non-empty one)."""
    if value is None and none:
        return None
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise fail(key, "a string" if empty else "a non-empty string", value)
    return value


def mapping(key: str, value: Any) -> dict[str, Any]:
    """A mapping with string keys, returned as a new dict."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise fail(key, "a mapping", value)
    return dict(value)


def positive(key: str, value: Any) -> float:
    """A finite number > 0."""
    return number(key, value, low=0, low_open=True)  # type: ignore[return-value]


def non_negative(key: str, value: Any) -> float:
    """A finite number ≥ 0."""
    return number(key, value, low=0)  # type: ignore[return-value]


def positive_int(key: str, value: Any) -> int:
    """An integer ≥ 1."""
    return integer(key, value, low=1)  # type: ignore[return-value]


def like(key: str, value: Any, default: Any) -> Any:
    """``value`` of the same kind as ``default``: a bool for a bool, a finite number for a number (an int
    default keeps integral values ints), a string for a string; anything for other defaults."""
    if isinstance(default, bool):
        return boolean(key, value)
    if isinstance(default, (int, float)):
        number(key, value)
        return int(value) if isinstance(default, int) and float(value).is_integer() else value
    if isinstance(default, str):
        return string(key, value)
    return value


Check = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Option:
    """One declared option: its default and its validator ``check(key, value) -> value``."""

    default: Any
    check: Check
    doc: str = ""


def options(prefix: str, given: Mapping[str, Any] | None, declared: Mapping[str, Option], *,
            fill: bool = True) -> dict[str, Any]:
    """Validate ``given`` against ``declared`` (unknown names: a ConfigError listing the valid ones); each
    value is checked as ``f"{prefix}.{name}"``. ``fill``: the result also holds the defaults of the options
    not given."""
    given = dict(given or {})
    unknown = sorted(k for k in given if k not in declared)
    if unknown:
        valid = ", ".join(sorted(declared)) or "none"
        raise ConfigError(f"{prefix}: unknown option(s) {', '.join(map(str, unknown))}; valid: {valid}")
    out = {name: opt.default for name, opt in declared.items()} if fill else {}
    for name, value in given.items():
        out[name] = declared[name].check(f"{prefix}.{name}", value)
    return out
