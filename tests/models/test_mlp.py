"""The MLP model's options; PacGAN's architecture by its options, parameter counts by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saddlepoint.models import build_models


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_mlp_options() -> None:
    G, D = build_models("mlp", (2,), 2, depth=4, width=400, activation="leaky_relu", batchnorm=True)
    assert sum(isinstance(m, nn.Linear) for m in G.modules()) == 5
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm1d) for m in D.modules()) == 0
    assert sum(isinstance(m, nn.Linear) for m in D.modules()) == 5
    assert G.net[0].out_features == 400
    for act, cls in [("relu", nn.ReLU), ("tanh", nn.Tanh), ("elu", nn.ELU), ("leaky_relu", nn.LeakyReLU)]:
        G, D = build_models("mlp", (2,), 2, activation=act)
        assert any(isinstance(m, cls) for m in D.modules())
    G, _ = build_models("mlp", (2,), 3)
    assert sum(isinstance(m, nn.Linear) for m in G.modules()) == 4  # default depth 3
    assert G.net[0].out_features == 128


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_pacgan_architecture_parameter_counts() -> None:
    # PacGAN (Lin et al. 2018): G 2→400→400→400→400→2 with BN+ReLU, D 3 layers of 200 units
    G, D = build_models("mlp", (2,), 2, depth=4, width=400, batchnorm=True, d_depth=3, d_width=200)
    # G: 2·400 + 3·400² (no biases before BN) + 4 BN (2·400 each) + output 400·2 + 2
    assert count(G) == 2 * 400 + 4 * 800 + 3 * 400 * 400 + 400 * 2 + 2 == 484_802
    # D: (2·200 + 200) + 2·(200² + 200) + (200 + 1)
    assert count(D) == 600 + 2 * 40_200 + 201 == 81_201
    assert sum(isinstance(m, nn.Linear) for m in D.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    assert not any(isinstance(m, nn.BatchNorm1d) for m in D.modules())
    x = G(torch.randn(5, 2))
    assert x.shape == (5, 2) and D(x).shape == (5,)


def test_discriminator_follows_generator_by_default() -> None:
    G, D = build_models("mlp", (2,), 2, depth=2, width=16)
    assert count(G) == (2 * 16 + 16) + (16 * 16 + 16) + (16 * 2 + 2)
    assert count(D) == (2 * 16 + 16) + (16 * 16 + 16) + (16 + 1)


@pytest.mark.parametrize("key,value", [("d_depth", 0), ("d_width", -3)])
def test_discriminator_shape_validated(key: str, value: int) -> None:
    with pytest.raises(Exception, match=f"model.{key}"):
        build_models("mlp", (2,), 2, **{key: value})
