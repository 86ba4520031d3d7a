"""The MLP model's options."""

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
