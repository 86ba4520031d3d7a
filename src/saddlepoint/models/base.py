"""Model registry, weight initialisation and option checking shared by all architectures."""

from __future__ import annotations

import math
from collections.abc import Iterable

from torch import nn

from ..errors import ConfigError
from ..registry import Registry

MODELS: Registry = Registry("model")
"""``name → builder(sample_shape, z_dim, **options) -> (G, D)``."""

INITS = ("normal", "default")


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN initialisation (Radford et al. 2016, §4): conv/linear weights ~ N(0, std), biases 0,
    normalisation scales ~ N(1, std), shifts 0. Apply *before* spectral normalisation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
            if getattr(m, "weight", None) is not None:
                nn.init.normal_(m.weight, 1.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every conv/linear weight in ``module``."""
    from torch.nn.utils.parametrizations import spectral_norm

    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            spectral_norm(m)
    return module


def finish(
    G: nn.Module, D: nn.Module, init: str, spectral_norm_d: bool = False
) -> tuple[nn.Module, nn.Module]:
    """Initialise both players (``init='normal'``: N(0, 0.02); ``'default'``: PyTorch's own), then
    spectrally normalise D if asked."""
    if init == "normal":
        init_weights(G)
        init_weights(D)
    if spectral_norm_d:
        apply_spectral_norm(D)
    return G, D


# ----------------------------------------------------------------------------- option checking


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"model.{name}: expected true or false, got {value!r}")
    return value


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"model.{name}: expected a positive integer, got {value!r}")
    return value


def check_positive_float(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"model.{name}: expected a positive number, got {value!r}")
    return float(value)


def check_float_range(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"model.{name}: expected a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"model.{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


def check_z_dim(z_dim: object) -> int:
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
        raise ConfigError(f"model.z_dim: expected a positive integer, got {z_dim!r}")
    return z_dim


def check_image_shape(model: str, sample_shape: tuple[int, ...], resolution: int) -> int:
    """Return the channel count of a C×H×W ``sample_shape`` that must be ``resolution`` square."""
    shape = tuple(sample_shape)
    if len(shape) != 3 or shape[1:] != (resolution, resolution) or shape[0] < 1:
        raise ConfigError(
            f"model.name: {model} generates C×{resolution}×{resolution} images, but the data samples "
            f"have shape {'×'.join(map(str, shape)) or '()'}"
        )
    return int(shape[0])


def scaled(channels: int, width: float) -> int:
    """``channels · width`` rounded, at least 1."""
    return max(1, int(round(channels * width)))
