"""Generator/discriminator pairs by name.

Every builder has the signature ``builder(sample_shape, z_dim, **options) -> (G, D)`` where
``G(z: N×z_dim) -> N×sample_shape`` (with attributes ``z_dim`` and ``sample_shape``) and
``D(x) -> N`` logits. Add an architecture with ``@MODELS.register("name")``.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..errors import ConfigError
from . import dcgan, mlp  # noqa: F401  (registers the builders)
from .base import MODELS, init_weights

MODEL_RESOLUTION: dict[str, int | None] = {"mlp": None, "dcgan28": 28, "dcgan32": 32, "dcgan64": 64}
"""Native image side of each image model; ``None`` for models that take any (flat) sample shape."""


def native_resolution(name: str) -> int | None:
    """Image side the model generates (28, 32, 64), or ``None`` if it adapts to the data's shape."""
    MODELS.get(name, key="model.name")
    return MODEL_RESOLUTION.get(name)


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
