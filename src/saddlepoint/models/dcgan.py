"""Convolutional GANs: the seed 28×28 architecture and the standard DCGAN at 32×32 and 64×64."""

from __future__ import annotations

from torch import Tensor, nn

from ..checks import boolean, choice, number, positive, positive_int
from .base import INITS, MODELS, check_image_shape, finish, scaled

# ----------------------------------------------------------------------------- dcgan28


class DCGAN28Generator(nn.Module):
    """The TensorFlow DCGAN tutorial's generator: Dense → 7×7×256, ConvT 128 k5 s1, 64 k5 s2,
    C k5 s2 + tanh (``scale`` scales the channel counts)."""

    def __init__(self, channels: int, z_dim: int, scale: float, negative_slope: float) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.sample_shape = (channels, 28, 28)
        c1, c2, c3 = scaled(256, scale), scaled(128, scale), scaled(64, scale)
        self.c1 = c1
        self.project = nn.Sequential(
            nn.Linear(z_dim, 7 * 7 * c1, bias=False),
            nn.BatchNorm1d(7 * 7 * c1),
            nn.LeakyReLU(negative_slope),
        )
        self.body = nn.Sequential(
            nn.ConvTranspose2d(c1, c2, 5, stride=1, padding=2, bias=False),  # 7×7
            nn.BatchNorm2d(c2),
            nn.LeakyReLU(negative_slope),
            nn.ConvTranspose2d(c2, c3, 5, stride=2, padding=2, output_padding=1, bias=False),  # 14×14
            nn.BatchNorm2d(c3),
            nn.LeakyReLU(negative_slope),
            nn.ConvTranspose2d(c3, channels, 5, stride=2, padding=2, output_padding=1, bias=False),  # 28
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.project(z).reshape(z.shape[0], self.c1, 7, 7))


class DCGAN28Discriminator(nn.Module):
    """The TensorFlow DCGAN tutorial's discriminator: Conv 64 k5 s2, LeakyReLU, Dropout 0.3,
    Conv 128 k5 s2, LeakyReLU, Dropout 0.3, Dense 1."""

    def __init__(self, channels: int, scale: float, negative_slope: float, dropout: float) -> None:
        super().__init__()
        c1, c2 = scaled(64, scale), scaled(128, scale)
        self.net = nn.Sequential(
            nn.Conv2d(channels, c1, 5, stride=2, padding=2),  # 14×14
            nn.LeakyReLU(negative_slope),
            nn.Dropout(dropout),
            nn.Conv2d(c1, c2, 5, stride=2, padding=2),  # 7×7
            nn.LeakyReLU(negative_slope),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).reshape(-1)


@MODELS.register("dcgan28", resolution=28)
def dcgan28(
    sample_shape: tuple[int, ...],
    z_dim: int,
    scale: float = 1.0,
    negative_slope: float = 0.2,
    dropout: float = 0.3,
    spectral_norm: bool = False,
    init: str = "normal",
) -> tuple[nn.Module, nn.Module]:
    """The seed architecture (TensorFlow's DCGAN tutorial) for C×28×28 images.

    At ``scale`` 1 the layer sizes are exactly the tutorial's (G 2,305,472 parameters at z_dim 100 and
    one channel, D 212,865); ``scale`` multiplies every channel count. Departures from the tutorial:
    LeakyReLU slope ``negative_slope`` = 0.2 (Keras' default is 0.3), symmetric padding 2 where Keras'
    'same' pads 1 before and 2 after for stride 2, and N(0, 0.02) initialisation (``init='default'``:
    PyTorch's). ``spectral_norm`` normalises D's layers.
    """
    z_dim = positive_int("model.z_dim", z_dim)
    channels = check_image_shape("dcgan28", sample_shape, MODELS.fact("dcgan28", "resolution"))
    scale = positive("model.scale", scale)
    negative_slope = number("model.negative_slope", negative_slope, low=0.0, high=1.0)
    dropout = number("model.dropout", dropout, low=0.0, high=0.99)
    spectral_norm = boolean("model.spectral_norm", spectral_norm)
    init = choice("model.init", init, INITS)
    G = DCGAN28Generator(channels, z_dim, scale, negative_slope)
    D = DCGAN28Discriminator(channels, scale, negative_slope, dropout)
    return finish(G, D, init, spectral_norm)


# ----------------------------------------------------------------------------- dcgan32 / dcgan64


class DCGANGenerator(nn.Module):
    """Radford et al. (2016): z → ConvT k4 s1 p0 to 4×4, then k4 s2 p1 ConvT + BatchNorm + ReLU,
    halving the channels and doubling the size, up to ``resolution``; the last ConvT outputs C + tanh."""

    def __init__(self, channels: int, z_dim: int, resolution: int, ngf: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.sample_shape = (channels, resolution, resolution)
        n_up = {32: 3, 64: 4}[resolution]  # number of ×2 stages after 4×4
        ch = ngf * 2 ** (n_up - 1)  # ngf·4 at 32, ngf·8 at 64
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, 4, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, stride=2, padding=1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.reshape(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Radford et al. (2016): k4 s2 p1 convs with LeakyReLU 0.2, doubling the channels and halving the
    size down to 4×4 (BatchNorm on all but the first when ``batchnorm``), then a k4 conv to one logit."""

    def __init__(self, channels: int, resolution: int, ndf: int, batchnorm: bool) -> None:
        super().__init__()
        n_down = {32: 3, 64: 4}[resolution]
        ch = ndf
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(n_down - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=0))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).reshape(-1)


def _dcgan(
    name: str,
    sample_shape: tuple[int, ...],
    z_dim: int,
    scale: float,
    spectral_norm: bool,
    batchnorm_d: bool | None,
    init: str,
) -> tuple[nn.Module, nn.Module]:
    z_dim = positive_int("model.z_dim", z_dim)
    resolution = MODELS.fact(name, "resolution")
    channels = check_image_shape(name, sample_shape, resolution)
    scale = positive("model.scale", scale)
    spectral_norm = boolean("model.spectral_norm", spectral_norm)
    if batchnorm_d is None:
        batchnorm_d = not spectral_norm
    batchnorm_d = boolean("model.batchnorm_d", batchnorm_d)
    init = choice("model.init", init, INITS)
    nf = scaled(64, scale)
    G = DCGANGenerator(channels, z_dim, resolution, nf)
    D = DCGANDiscriminator(channels, resolution, nf, batchnorm_d)
    return finish(G, D, init, spectral_norm)


_DCGAN_DOC = """Standard DCGAN (Radford et al. 2016) for C×{r}×{r} images.

    ``scale`` scales ngf = ndf = 64·scale. ``spectral_norm`` (Miyato et al. 2018) normalises every D
    layer and then, unless ``batchnorm_d`` says otherwise, D has no BatchNorm; by default D has
    BatchNorm on its inner layers. Convolutions followed by BatchNorm have no bias. ``init`` 'normal':
    N(0, 0.02) weights, N(1, 0.02) BatchNorm scales; 'default': PyTorch's.
    """


@MODELS.register("dcgan32", resolution=32)
def dcgan32(
    sample_shape: tuple[int, ...],
    z_dim: int,
    scale: float = 1.0,
    spectral_norm: bool = False,
    batchnorm_d: bool | None = None,
    init: str = "normal",
) -> tuple[nn.Module, nn.Module]:
    return _dcgan("dcgan32", sample_shape, z_dim, scale, spectral_norm, batchnorm_d, init)


@MODELS.register("dcgan64", resolution=64)
def dcgan64(
    sample_shape: tuple[int, ...],
    z_dim: int,
    scale: float = 1.0,
    spectral_norm: bool = False,
    batchnorm_d: bool | None = None,
    init: str = "normal",
) -> tuple[nn.Module, nn.Module]:
    return _dcgan("dcgan64", sample_shape, z_dim, scale, spectral_norm, batchnorm_d, init)


dcgan32.__doc__ = _DCGAN_DOC.format(r=32)
dcgan64.__doc__ = _DCGAN_DOC.format(r=64)
