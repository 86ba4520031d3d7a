"""Generator/discriminator pairs by name.

Every builder has the signature ``builder(sample_shape, z_dim, **options) -> (G, D)`` where
``G(z: N×z_dim) -> N×sample_shape`` (with attributes ``z_dim`` and ``sample_shape``) and
``D(x) -> N`` logits. Add an architecture with ``@MODELS.register("name", resolution=R)`` (``R``: the
side of the square images it generates, None if it adapts to the data's shape). The MNIST classifier
shipped for the metrics is in :mod:`.classifier` (not a generator/discriminator pair, so not registered).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from torch import nn

from ..errors import ConfigError
from . import dcgan, mlp, resnet  # noqa: F401  (registers the builders)
from .base import MODELS, init_weights


def native_resolution(name: str) -> int | None:
    """Image side the model generates (28, 32, 64), or ``None`` if it adapts to the data's shape: the
    ``resolution`` fact of its registration."""
    return MODELS.facts(name, "model.name").get("resolution")


class ResolutionView(Mapping[str, "int | None"]):
    """``MODEL_RESOLUTION[name]``: :func:`native_resolution` as a read-only mapping over the registry."""

    def __getitem__(self, name: str) -> int | None:
        if name not in MODELS:
            raise KeyError(name)
        return native_resolution(name)

    def __iter__(self) -> Iterator[str]:
        return iter(MODELS.registered())

    def __len__(self) -> int:
        return len(MODELS.registered())


MODEL_RESOLUTION = ResolutionView()


def accepted_options(name: str) -> set[str] | None:
    """Option names the builder accepts (``None``: it takes any, via ``**options``)."""
    params = list(inspect.signature(MODELS.get(name, key="model.name")).parameters.values())[2:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build_models(
    name: str, sample_shape: tuple[int, ...], z_dim: int, **options: Any
) -> tuple[nn.Module, nn.Module]:
    """Build ``(G, D)`` for the registered model ``name``.

    Only the options that the builder's signature names are passed on (others are silently dropped,
    so that one config may carry e.g. ``spectral_norm`` for several models); invalid option values
    raise :class:`ConfigError` naming ``model.<option>``.
    """
    builder = MODELS.get(name, key="model.name")
    accepted = accepted_options(name)
    if accepted is not None:
        options = {k: v for k, v in options.items() if k in accepted}
    try:
        return builder(tuple(sample_shape), z_dim, **options)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"model.name: cannot build {name!r} for samples of shape {tuple(sample_shape)}: {exc}"
        ) from exc


__all__ = [
    "MODELS",
    "MODEL_RESOLUTION",
    "accepted_options",
    "build_models",
    "init_weights",
    "native_resolution",
]
