"""Name → object registries that carry facts: adding a dataset, model, loss, penalty, optimizer, metric or
game is one decorated function or class and nothing else.

``@REG.register("name", "alias", fact=value, ...)`` adds an entry under its name and aliases, with facts
(plain keyword values: a metric's direction per key, a model's native resolution, ...) that callers read
with ``REG.facts("name")`` instead of keeping their own tables. ``REG.register("name", obj)`` is the direct
form. Aliases resolve everywhere (``get``, ``facts``, ``canonical``, ``in``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of builders, e.g. ``LOSSES = Registry("loss")``.

    ``@LOSSES.register("ns")`` adds an entry; ``LOSSES.get("ns")`` returns it or raises a
    :class:`ConfigError` that lists the valid names; ``LOSSES.facts("ns")`` returns the facts given at
    registration (a read-only mapping, empty if none).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._canonical: dict[str, str] = {}  # every key (name or alias) → its name
        self._facts: dict[str, Mapping[str, Any]] = {}  # name → facts
        self._order: list[str] = []  # names in registration order

    def register(self, name: str, *aliases: Any, **facts: Any) -> Any:
        """Decorator form ``@REG.register(name, *aliases, **facts)``; direct form
        ``REG.register(name, obj, *aliases, **facts)`` (registers ``obj`` and returns it)."""
        if aliases and not isinstance(aliases[0], str):
            obj, rest = aliases[0], aliases[1:]
            return self.add(name, obj, *rest, **facts)

        def decorator(obj: T) -> T:
            return self.add(name, obj, *aliases, **facts)

        return decorator

    def add(self, name: str, obj: T, *aliases: str, **facts: Any) -> T:
        """Register ``obj`` under ``name`` and ``aliases`` with ``facts``; returns ``obj``."""
        keys = (name, *aliases)
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"{self.kind} names must be strings, got {key!r}")
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} registered twice")
        facts = self.check_facts(name, obj, dict(facts))
        for key in keys:
            self._entries[key] = obj
            self._canonical[key] = name
        self._facts[name] = MappingProxyType(facts)
        self._order.append(name)
        return obj

    def check_facts(self, name: str, obj: T, facts: dict[str, Any]) -> dict[str, Any]:
        """Hook for registries whose facts have a schema: validate (raise) and return the facts to store."""
        return facts

    def get(self, name: str, key: str | None = None) -> T:
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def canonical(self, name: str, key: str | None = None) -> str:
        """The registered name of ``name`` (itself, or the name an alias stands for)."""
        self.get(name, key)
        return self._canonical[name]

    def facts(self, name: str, key: str | None = None) -> Mapping[str, Any]:
        """The facts registered with ``name`` (or its alias): a read-only mapping."""
        return self._facts[self.canonical(name, key)]

    def fact(self, name: str, fact: str, default: Any = None) -> Any:
        """One fact of ``name`` (``default`` if it was not given)."""
        return self.facts(name).get(fact, default)

    def aliases(self, name: str) -> list[str]:
        """The other keys of ``name``'s entry, in registration order."""
        canonical = self.canonical(name)
        return [k for k, v in self._canonical.items() if v == canonical and k != canonical]

    def registered(self) -> list[str]:
        """Registered names (aliases left out) in registration order."""
        return list(self._order)

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, entry)`` for every registered name (aliases left out), in registration order."""
        return ((name, self._entries[name]) for name in self._order)

    def names(self) -> list[str]:
        """Every key, aliases included, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
