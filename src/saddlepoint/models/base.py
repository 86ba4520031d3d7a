"""Model registry, weight initialisation and option checking shared by all architectures."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ..registry import Registry

MODELS: Registry = Registry("model")
"""``name → builder(sample_shape, z_dim, **options) -> (G, D)``; fact ``resolution``: the side of the
square images the model generates (28, 32, 64), None if it adapts to any sample shape."""

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
