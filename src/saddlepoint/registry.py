"""Name → object registries: adding a dataset, model, loss, penalty, optimizer, metric or game is one
decorated function or class and nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of builders, e.g. ``LOSSES = Registry("loss")``.

    ``@LOSSES.register("ns")`` adds an entry; ``LOSSES.get("ns")`` returns it or raises a
    :class:`ConfigError` that lists the valid names.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            for key in (name, *aliases):
                if key in self._entries:
                    raise ValueError(f"{self.kind} {key!r} registered twice")
                self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str, key: str | None = None) -> T:
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}; valid: {', '.join(sorted(self._entries))}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
