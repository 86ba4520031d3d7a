"""ResNet GANs at 32×32 and 64×64: SNGAN (Miyato et al. 2018) and WGAN-GP (Gulrajani et al. 2017).

Both families share the pre-activation residual blocks of Gulrajani et al. (2017, App. F; their
``gan_cifar_resnet.py``), which Miyato et al. (2018, App. B.4, Fig. 8) reuse:

* generator block: BN, ReLU, 2× nearest-neighbour upsampling, conv3×3 (in→out), BN, ReLU, conv3×3;
  shortcut: upsampling and conv1×1;
* discriminator block: [LN] ReLU conv3×3 (in→in), [LN] ReLU conv3×3 (in→out), [2×2 mean pooling];
  shortcut, when the shape changes: mean pooling and conv1×1 (the two commute: the references apply
  them in either order);
* "optimized" first discriminator block: conv3×3, ReLU, conv3×3, mean pooling; shortcut: mean pooling,
  conv1×1 (no activation on the input image).

Initialisation ``init='xavier'`` (default) is the reference codes' own: Glorot-uniform weights with gain
√2 on the convolutions of the residual branches and gain 1 on shortcuts, input/output layers (Chainer's
``GlorotUniform(√2)``/``GlorotUniform()`` in sngan_projection; tflib's ``he_init`` uniform, the same
law), zero biases, BatchNorm/LayerNorm scales 1 and shifts 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import boolean, choice, positive, positive_int
from .base import MODELS, check_image_shape, finish, scaled

#: ``init`` choices: the reference Glorot-uniform scheme, DCGAN's N(0, 0.02), PyTorch's defaults
RESNET_INITS = ("xavier", "normal", "default")

#: discriminator heads: ReLU + global sum or mean pooling, or the flattened feature map
POOLS = ("sum", "mean", "flatten")

#: Glorot-uniform gain of the convolutions that follow a ReLU in the residual branches
RELU_GAIN = math.sqrt(2.0)


def _conv(cin: int, cout: int, k: int, *, bias: bool = True, gain: float = 1.0) -> nn.Conv2d:
    """A stride-1 'same' convolution that remembers its Glorot gain for :func:`xavier_init`."""
    conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)
    conv.init_gain = gain  # plain attribute: not a parameter, not in the state dict
    return conv


def _up(x: Tensor) -> Tensor:
    """2× nearest-neighbour upsampling (Chainer's ``unpooling_2d``; tflib's ``depth_to_space`` of copies)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _down(x: Tensor) -> Tensor:
    """2×2 mean pooling."""
    return F.avg_pool2d(x, 2)


def xavier_init(module: nn.Module) -> None:
    """The reference initialisation (Miyato et al. 2018's and Gulrajani et al. 2017's released code):
    Glorot-uniform conv/linear weights with each layer's gain (√2 in residual branches, else 1), zero
    biases. Normalisation layers keep scale 1 and shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, gain=getattr(m, "init_gain", 1.0))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------- blocks


class GBlock(nn.Module):
    """Generator ResBlock (Gulrajani et al. 2017, App. F; Miyato et al. 2018, Fig. 8a): BN, ReLU, ×2
    upsampling, conv3×3 in→out, BN, ReLU, conv3×3 out→out; shortcut ×2 upsampling + conv1×1.
    ``conv1_bias`` False: the first conv has no bias (gan_64x64.py)."""

    def __init__(self, cin: int, cout: int, conv1_bias: bool = True) -> None:
        super().__init__()
        self.b1 = nn.BatchNorm2d(cin)
        self.c1 = _conv(cin, cout, 3, bias=conv1_bias, gain=RELU_GAIN)
        self.b2 = nn.BatchNorm2d(cout)
        self.c2 = _conv(cout, cout, 3, gain=RELU_GAIN)
        self.c_sc = _conv(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.c1(_up(F.relu(self.b1(x))))
        h = self.c2(F.relu(self.b2(h)))
        return h + _up(self.c_sc(x))  # conv1×1 then upsample: the same as the reverse, 4× cheaper


class DBlock(nn.Module):
    """Discriminator ResBlock (Gulrajani et al. 2017, App. F; Miyato et al. 2018, Fig. 8b): [LN] ReLU
    conv3×3 in→in, [LN] ReLU conv3×3 in→out, [2×2 mean pool]; shortcut: identity when the shape is
    kept, else mean pool + conv1×1. ``layer_norm``: per-sample LayerNorm over C×H×W with a per-channel
    affine (tflib's ``Layernorm``, = ``GroupNorm(1, C)``) before each ReLU."""

    def __init__(self, cin: int, cout: int, down: bool, layer_norm: bool = False, conv1_bias: bool = True) -> None:
        super().__init__()
        self.down = down
        self.n1: nn.Module = nn.GroupNorm(1, cin) if layer_norm else nn.Identity()
        self.c1 = _conv(cin, cin, 3, bias=conv1_bias, gain=RELU_GAIN)
        self.n2: nn.Module = nn.GroupNorm(1, cin) if layer_norm else nn.Identity()
        self.c2 = _conv(cin, cout, 3, gain=RELU_GAIN)
        self.c_sc = _conv(cin, cout, 1) if down or cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.c1(F.relu(self.n1(x)))
        h = self.c2(F.relu(self.n2(h)))
        if self.down:
            h = _down(h)
        if self.c_sc is None:
            return h + x
        return h + self.c_sc(_down(x) if self.down else x)


class OptimizedDBlock(nn.Module):
    """The first discriminator block (Gulrajani et al. 2017's ``OptimizedResBlockDisc1``, reused by
    Miyato et al. 2018): conv3×3, ReLU, conv3×3, mean pool; shortcut: mean pool, conv1×1."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c1 = _conv(cin, cout, 3, gain=RELU_GAIN)
        self.c2 = _conv(cout, cout, 3, gain=RELU_GAIN)
        self.c_sc = _conv(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return _down(self.c2(F.relu(self.c1(x)))) + self.c_sc(_down(x))


# ----------------------------------------------------------------------------- networks


class ResNetGenerator(nn.Module):
    """z → linear to ``widths[0]``×4×4 → one :class:`GBlock` per consecutive pair of ``widths`` (each
    doubles the side) → BN, ReLU, conv3×3 to the image channels → tanh."""

    def __init__(
        self, channels: int, z_dim: int, widths: Sequence[int], conv1_bias: bool = True, out_gain: float = 1.0
    ) -> None:
        super().__init__()
        side = 4 * 2 ** (len(widths) - 1)
        self.z_dim = z_dim
        self.sample_shape = (channels, side, side)
        self.bottom = widths[0]
        self.project = nn.Linear(z_dim, 4 * 4 * widths[0])
        self.blocks = nn.Sequential(*(GBlock(a, b, conv1_bias) for a, b in zip(widths[:-1], widths[1:])))
        self.out_bn = nn.BatchNorm2d(widths[-1])
        self.out_conv = _conv(widths[-1], channels, 3, gain=out_gain)

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).reshape(z.shape[0], self.bottom, 4, 4)
        h = self.blocks(h)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))


class ResNetDiscriminator(nn.Module):
    """Stem (``'optimized'``: :class:`OptimizedDBlock` to ``widths[0]``; ``'conv'``: a plain conv3×3) →
    one :class:`DBlock` per consecutive pair of ``widths`` (``downs[i]``: it halves the side) → head
    (``pool`` 'sum' or 'mean': ReLU and global sum/mean pooling; 'flatten': the raw feature map) →
    linear to one logit per sample."""

    def __init__(
        self,
        channels: int,
        resolution: int,
        widths: Sequence[int],
        downs: Sequence[bool],
        *,
        stem: str = "optimized",
        pool: str = "sum",
        layer_norm: bool = False,
        conv1_bias: bool = True,
    ) -> None:
        super().__init__()
        if len(downs) != len(widths) - 1 or stem not in ("optimized", "conv") or pool not in POOLS:
            raise ValueError("inconsistent ResNetDiscriminator layout")
        self.pool = pool
        self.stem: nn.Module
        if stem == "optimized":
            self.stem, side = OptimizedDBlock(channels, widths[0]), resolution // 2
        else:
            self.stem, side = _conv(channels, widths[0], 3), resolution
        self.blocks = nn.Sequential(
            *(DBlock(a, b, d, layer_norm, conv1_bias) for a, b, d in zip(widths[:-1], widths[1:], downs))
        )
        side //= 2 ** sum(bool(d) for d in downs)
        self.head = nn.Linear(widths[-1] * (side * side if pool == "flatten" else 1), 1)

    def features(self, x: Tensor) -> Tensor:
        """The vector the final linear layer reads (N × features)."""
        h = self.blocks(self.stem(x))
        if self.pool == "flatten":
            return h.flatten(1)
        h = F.relu(h)
        return h.sum(dim=(2, 3)) if self.pool == "sum" else h.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).reshape(-1)


Maker = Callable[[int, int, float], tuple[nn.Module, nn.Module]]


def _build(
    name: str,
    sample_shape: tuple[int, ...],
    z_dim: int,
    scale: float,
    spectral_norm: bool,
    init: str,
    make: Maker,
) -> tuple[nn.Module, nn.Module]:
    """Validate the options, build with ``make(channels, z_dim, scale)``, initialise, spectrally normalise D."""
    z_dim = positive_int("model.z_dim", z_dim)
    channels = check_image_shape(name, sample_shape, MODELS.fact(name, "resolution"))
    scale = positive("model.scale", scale)
    spectral_norm = boolean("model.spectral_norm", spectral_norm)
    init = choice("model.init", init, RESNET_INITS)
    G, D = make(channels, z_dim, scale)
    if init == "xavier":
        xavier_init(G)
        xavier_init(D)
    return finish(G, D, "default" if init == "xavier" else init, spectral_norm)


_OPTIONS_DOC = """
    Options: ``scale`` multiplies the base width (rounded, at least 1); ``z_dim`` is 128 in the paper
    (the config's own default is 64: set ``model.z_dim: 128`` to match); ``spectral_norm`` normalises
    every conv/linear weight of D (``torch.nn.utils.parametrizations.spectral_norm``, one power
    iteration per forward), never G's; ``init`` 'xavier' (the reference codes'), 'normal' (N(0, 0.02))
    or 'default' (PyTorch's). The image channels C come from the data.
    """


# ----------------------------------------------------------------------------- SNGAN


def _sngan32(channels: int, z_dim: int, scale: float) -> tuple[nn.Module, nn.Module]:
    g, d = scaled(256, scale), scaled(128, scale)
    G = ResNetGenerator(channels, z_dim, [g, g, g, g])
    D = ResNetDiscriminator(channels, 32, [d, d, d, d], [True, False, False], stem="optimized", pool="sum")
    return G, D


def _sngan64(channels: int, z_dim: int, scale: float) -> tuple[nn.Module, nn.Module]:
    ch = scaled(64, scale)
    G = ResNetGenerator(channels, z_dim, [16 * ch, 8 * ch, 4 * ch, 2 * ch, ch])
    D = ResNetDiscriminator(
        channels, 64, [ch, 2 * ch, 4 * ch, 8 * ch, 16 * ch], [True] * 4, stem="optimized", pool="sum"
    )
    return G, D


@MODELS.register("sngan-resnet32", "resnet32", resolution=32)  # resnet32: the name CONTRACTS.md gives
def sngan_resnet32(
    sample_shape: tuple[int, ...],
    z_dim: int = 128,
    scale: float = 1.0,
    spectral_norm: bool = True,
    init: str = "xavier",
) -> tuple[nn.Module, nn.Module]:
    return _build("sngan-resnet32", sample_shape, z_dim, scale, spectral_norm, init, _sngan32)


@MODELS.register("sngan-resnet64", "resnet64", resolution=64)
def sngan_resnet64(
    sample_shape: tuple[int, ...],
    z_dim: int = 128,
    scale: float = 1.0,
    spectral_norm: bool = True,
    init: str = "xavier",
) -> tuple[nn.Module, nn.Module]:
    return _build("sngan-resnet64", sample_shape, z_dim, scale, spectral_norm, init, _sngan64)


sngan_resnet32.__doc__ = (
    """SNGAN's CIFAR-10 ResNet (Miyato et al. 2018, App. B.4, Table 4; sngan_projection's resnet_32 /
    snresnet_32) for C×32×32 images.

    G: z → linear 4×4×256 → 3 up-blocks 256 → BN, ReLU, conv3×3 → tanh (4,276,739 parameters at C = 3,
    z_dim 128). D: optimized down-block 128, down-block 128, block 128, block 128 → ReLU, global sum
    pooling, linear → 1 (1,053,825 parameters). Width: ``scale`` × 256 (G) and × 128 (D). Spectral
    normalisation of D is on by default.
    """
    + _OPTIONS_DOC
)
sngan_resnet64.__doc__ = (
    """The 64×64 ResNet of the SN authors' released code (sngan_projection, Miyato & Koyama 2018:
    gen_models/resnet_64.py and dis_models/snresnet_64.py with ch = 64, unconditional), for C×64×64.

    G: z → linear 4×4×1024 → up-blocks 1024→512→256→128→64 → BN, ReLU, conv3×3 → tanh (12,220,675
    parameters at C = 3, z_dim 128). D: optimized down-block 64, down-blocks 64→128→256→512→1024 (to
    2×2) → ReLU, global sum pooling, linear → 1 (10,141,441 parameters). ``scale`` multiplies ch = 64.
    Spectral normalisation of D is on by default.
    """
    + _OPTIONS_DOC
)


# ----------------------------------------------------------------------------- WGAN-GP


def _wgangp32(channels: int, z_dim: int, scale: float) -> tuple[nn.Module, nn.Module]:
    dim = scaled(128, scale)
    G = ResNetGenerator(channels, z_dim, [dim] * 4)
    D = ResNetDiscriminator(channels, 32, [dim] * 4, [True, False, False], stem="optimized", pool="mean")
    return G, D


def _wgangp64(channels: int, z_dim: int, scale: float) -> tuple[nn.Module, nn.Module]:
    d = scaled(64, scale)
    G = ResNetGenerator(channels, z_dim, [8 * d, 8 * d, 4 * d, 2 * d, d], conv1_bias=False, out_gain=RELU_GAIN)
    D = ResNetDiscriminator(
        channels, 64, [d, 2 * d, 4 * d, 8 * d, 8 * d], [True] * 4,
        stem="conv", pool="flatten", layer_norm=True, conv1_bias=False,
    )
    return G, D


@MODELS.register("wgangp-resnet32", resolution=32)
def wgangp_resnet32(
    sample_shape: tuple[int, ...],
    z_dim: int = 128,
    scale: float = 1.0,
    spectral_norm: bool = False,
    init: str = "xavier",
) -> tuple[nn.Module, nn.Module]:
    return _build("wgangp-resnet32", sample_shape, z_dim, scale, spectral_norm, init, _wgangp32)


@MODELS.register("wgangp-resnet64", resolution=64)
def wgangp_resnet64(
    sample_shape: tuple[int, ...],
    z_dim: int = 128,
    scale: float = 1.0,
    spectral_norm: bool = False,
    init: str = "xavier",
) -> tuple[nn.Module, nn.Module]:
    return _build("wgangp-resnet64", sample_shape, z_dim, scale, spectral_norm, init, _wgangp64)


wgangp_resnet32.__doc__ = (
    """WGAN-GP's CIFAR-10 ResNet (Gulrajani et al. 2017, App. F; gan_cifar_resnet.py, unconditional)
    for C×32×32 images.

    G: z → linear 4×4×128 → 3 up-blocks 128 → BN, ReLU, conv3×3 → tanh (1,204,483 parameters at C = 3,
    z_dim 128). Critic: optimized down-block 128, down-block 128, block 128, block 128 → ReLU, global
    mean pooling, linear → 1 (1,053,825 parameters); no normalisation in the critic. ``scale``
    multiplies DIM_G = DIM_D = 128.
    """
    + _OPTIONS_DOC
)
wgangp_resnet64.__doc__ = (
    """WGAN-GP's 64×64 ResNet (Gulrajani et al. 2017; gan_64x64.py ``GoodGenerator`` /
    ``GoodDiscriminator``, DIM = 64) for C×64×64 images.

    G: z → linear 4×4×512 → up-blocks 512→512→256→128→64 (first conv of each without bias) → BN, ReLU,
    conv3×3 → tanh (8,540,483 parameters at C = 3, z_dim 128). Critic: conv3×3 64 → down-blocks
    64→128→256→512→512 with LayerNorm (first conv without bias) → flatten 4×4×512 → linear → 1
    (7,491,841 parameters). ``scale`` multiplies DIM = 64.
    """
    + _OPTIONS_DOC
)
