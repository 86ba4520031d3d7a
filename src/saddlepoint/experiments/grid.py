"""Grid expansion: ``--grid KEY=V1,V2`` parsing, the cartesian product and file-name-safe run names."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import UserError

__all__ = ["digest", "expand_grid", "flatten", "parse_grid", "run_name", "split_values", "value_text"]


def split_values(text: str) -> list[str]:
    """``"1e-3,[1e-3,2e-3],adam"`` → ``["1e-3", "[1e-3,2e-3]", "adam"]`` (commas inside brackets kept)."""
    out, depth, current = [], 0, []
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    out.append("".join(current).strip())
    return out


def parse_grid(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``["optim.name=adam,sgd", "loss.name=ns"]`` → ``{"optim.name": ["adam", "sgd"], "loss.name": ["ns"]}``."""
    grid: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--grid {pair!r}: expected KEY=V1,V2,...")
        values = split_values(text)
        if any(v == "" for v in values):
            raise UserError(f"--grid {pair!r}: empty value (expected KEY=V1,V2,...)")
        if key in grid:
            raise UserError(f"--grid {key}: given twice; put all its values in one --grid {key}=V1,V2")
        if len(set(values)) != len(values):
            raise UserError(f"--grid {pair!r}: a value is repeated")
        grid[key] = values
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, first key varying slowest (an empty grid gives one point)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def value_text(value: Any) -> str:
    """How a grid value is spelled in run names and logs."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    return str(value)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=-]+")


def digest(obj: Any) -> str:
    """Eight hex digits identifying a JSON-able object."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_name(values: Mapping[str, Any], seed: int, max_len: int = 150) -> str:
    """A file-name-safe directory name from grid values and seed: ``optim.name=adam__loss.name=ns__seed=0``."""
    parts = [f"{key}={value_text(value)}" for key, value in values.items()] + [f"seed={seed}"]
    name = _UNSAFE.sub("_", "__".join(parts)).strip("._") or "run"
    if len(name) > max_len:
        name = f"{name[: max_len - 9]}-{digest(parts)}"
    return name


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
