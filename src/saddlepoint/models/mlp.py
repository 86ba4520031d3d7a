"""Fully connected generator and discriminator, for the 2-D mixtures (and any flat data)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import boolean, choice, positive_int
from .base import INITS, MODELS, finish

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": lambda: nn.Tanh(),
    "elu": lambda: nn.ELU(),
}


class MLPGenerator(nn.Module):
    """z (N×z_dim) → ``depth`` hidden layers of ``width`` units → N×sample_shape."""

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        z_dim: int,
        depth: int,
        width: int,
        activation: str,
        batchnorm: bool,
        tanh_output: bool,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.sample_shape = tuple(sample_shape)
        layers: list[nn.Module] = []
        fan_in = z_dim
        for _ in range(depth):
            layers.append(nn.Linear(fan_in, width, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(ACTIVATIONS[activation]())
            fan_in = width
        layers.append(nn.Linear(fan_in, math.prod(self.sample_shape)))
        if tanh_output:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).reshape(z.shape[0], *self.sample_shape)


class MLPDiscriminator(nn.Module):
    """x (N×sample_shape) → ``depth`` hidden layers of ``width`` units → N logits."""

    def __init__(self, sample_shape: tuple[int, ...], depth: int, width: int, activation: str) -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        layers: list[nn.Module] = []
        fan_in = math.prod(self.sample_shape)
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), ACTIVATIONS[activation]()]
            fan_in = width
        layers.append(nn.Linear(fan_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(torch.flatten(x, 1)).reshape(-1)


@MODELS.register("mlp", resolution=None)
def mlp(
    sample_shape: tuple[int, ...],
    z_dim: int,
    depth: int = 3,
    width: int = 128,
    activation: str = "relu",
    batchnorm: bool = False,
    spectral_norm: bool = False,
    tanh_output: bool = False,
    init: str = "default",
    d_depth: int | None = None,
    d_width: int | None = None,
) -> tuple[nn.Module, nn.Module]:
    """Multi-layer perceptrons for flat data (the 2-D ring and grid).

    ``depth`` hidden layers of ``width`` units in G, and in D unless ``d_depth``/``d_width`` say otherwise
    (PacGAN, Lin et al. 2018, uses G with 4 × 400 BN+ReLU and a 3-layer maxout D of 200 units: ``depth: 4,
    width: 400, batchnorm: true, d_depth: 3, d_width: 200``, with ReLU for maxout); ``activation`` ∈ relu |
    leaky_relu (slope 0.2) | tanh | elu; ``batchnorm`` adds BatchNorm to G's hidden layers; ``spectral_norm`` normalises
    D's layers; ``tanh_output`` squashes G's output to [-1, 1] (for image data); ``init`` 'default' keeps
    PyTorch's initialisation (better on the ring than N(0, 0.02), whose tiny activations slow the start;
    measurements in docs/); 'normal' is N(0, 0.02) as in DCGAN.
    """
    z_dim = positive_int("model.z_dim", z_dim)
    shape = tuple(int(s) for s in sample_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"mlp: invalid sample shape {sample_shape!r}")
    depth = positive_int("model.depth", depth)
    width = positive_int("model.width", width)
    d_depth = depth if d_depth is None else positive_int("model.d_depth", d_depth)
    d_width = width if d_width is None else positive_int("model.d_width", d_width)
    activation = choice("model.activation", activation, ACTIVATIONS)
    batchnorm = boolean("model.batchnorm", batchnorm)
    spectral_norm = boolean("model.spectral_norm", spectral_norm)
    tanh_output = boolean("model.tanh_output", tanh_output)
    init = choice("model.init", init, INITS)
    G = MLPGenerator(shape, z_dim, depth, width, activation, batchnorm, tanh_output)
    D = MLPDiscriminator(shape, d_depth, d_width, activation)
    return finish(G, D, init, spectral_norm)
