"""Models by name: registry and resolution facts, shapes, initialisation, options, double backward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saddlepoint.errors import ConfigError
from saddlepoint.models import (
    MODEL_RESOLUTION,
    MODELS,
    accepted_options,
    build_models,
    native_resolution,
)

CASES = [
    ("mlp", (2,)),
    ("mlp", (1, 8, 8)),
    ("dcgan28", (1, 28, 28)),
    ("dcgan28", (3, 28, 28)),
    ("dcgan32", (3, 32, 32)),
    ("dcgan64", (3, 64, 64)),
]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registry_and_resolution() -> None:
    assert {"mlp", "dcgan28", "dcgan32", "dcgan64"} <= set(MODELS.names())
    assert native_resolution("dcgan28") == 28
    assert native_resolution("dcgan32") == 32
    assert native_resolution("dcgan64") == 64
    assert native_resolution("mlp") is None
    assert MODEL_RESOLUTION["dcgan28"] == 28
    with pytest.raises(ConfigError, match="model.name"):
        native_resolution("nope")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        build_models("nope", (2,), 2)


@pytest.mark.parametrize("name,shape", CASES)
def test_shapes(name: str, shape: tuple[int, ...]) -> None:
    G, D = build_models(name, shape, 16, scale=0.25) if name != "mlp" else build_models(name, shape, 16)
    assert G.z_dim == 16
    x = G(torch.randn(5, 16))
    assert x.shape == (5, *shape)
    assert D(x).shape == (5,)
    assert D(torch.randn(5, *shape)).shape == (5,)
    if name.startswith("dcgan"):
        assert x.abs().max() <= 1  # tanh output


def test_spectral_norm_removes_batchnorm() -> None:
    _, D = build_models("dcgan32", (3, 32, 32), 64, spectral_norm=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert all(hasattr(c, "parametrizations") and "weight" in c.parametrizations for c in convs)
    _, D = build_models("dcgan32", (3, 32, 32), 64, spectral_norm=True, batchnorm_d=True)
    assert any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    _, D = build_models("dcgan32", (3, 32, 32), 64, batchnorm_d=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    _, D = build_models("mlp", (2,), 2, spectral_norm=True)
    assert all("weight" in m.parametrizations for m in D.modules() if isinstance(m, nn.Linear))


def test_dcgan_init_statistics() -> None:
    G, D = build_models("dcgan64", (3, 64, 64), 100)
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 10_000:
            assert abs(m.weight.std().item() - 0.02) < 0.002
            assert abs(m.weight.mean().item()) < 0.002
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
            assert torch.all(m.bias == 0)
        if isinstance(m, nn.BatchNorm2d) and m.num_features >= 256:
            assert abs(m.weight.mean().item() - 1) < 0.005 and abs(m.weight.std().item() - 0.02) < 0.006
            assert torch.all(m.bias == 0)
    G, _ = build_models("mlp", (2,), 2, width=400, init="normal")
    assert abs(G.net[2].weight.std().item() - 0.02) < 0.002
    # the MLP's default init="default" keeps PyTorch's (much larger) Kaiming-uniform weights
    G, _ = build_models("mlp", (2,), 2, width=64)
    assert G.net[2].weight.std().item() > 0.06  # U(±1/8) has std 0.072


def test_options_filtered_and_validated() -> None:
    # options a builder does not name are dropped, not errors
    assert "batchnorm_d" not in accepted_options("dcgan28")
    G, D = build_models("dcgan28", (1, 28, 28), 8, batchnorm_d=True, activation="elu", scale=0.25)
    assert G.z_dim == 8
    bad = [
        ("mlp", (2,), {"activation": "swish"}, "model.activation"),
        ("mlp", (2,), {"depth": 0}, "model.depth"),
        ("mlp", (2,), {"depth": 2.5}, "model.depth"),
        ("mlp", (2,), {"width": "wide"}, "model.width"),
        ("mlp", (2,), {"batchnorm": "yes"}, "model.batchnorm"),
        ("mlp", (2,), {"init": "xavier"}, "model.init"),
        ("dcgan28", (1, 28, 28), {"scale": 0}, "model.scale"),
        ("dcgan28", (1, 28, 28), {"scale": -1.0}, "model.scale"),
        ("dcgan28", (1, 28, 28), {"dropout": 1.5}, "model.dropout"),
        ("dcgan32", (3, 32, 32), {"spectral_norm": 1}, "model.spectral_norm"),
        ("dcgan28", (1, 32, 32), {}, "model.name"),
        ("dcgan32", (3, 28, 28), {}, "model.name"),
        ("dcgan64", (2,), {}, "model.name"),
    ]
    for name, shape, options, where in bad:
        with pytest.raises(ConfigError, match=where):
            build_models(name, shape, 8, **options)
    with pytest.raises(ConfigError, match="model.z_dim"):
        build_models("mlp", (2,), 0)


@pytest.mark.parametrize("name,shape", CASES[:1] + CASES[2:])
def test_double_backward(name: str, shape: tuple[int, ...]) -> None:
    """First gradient with graph, then a Hessian-vector product, through G and D."""
    opts = {} if name == "mlp" else {"scale": 0.125}
    G, D = build_models(name, shape, 8, **opts)
    x_real = torch.randn(4, *shape)
    loss_d = (
        nn.functional.softplus(-D(x_real)).mean() + nn.functional.softplus(D(G(torch.randn(4, 8)))).mean()
    )
    for player in (G, D):
        params = [p for p in player.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss_d, params, create_graph=True, retain_graph=True)
        v = [torch.randn_like(g) for g in grads]
        hvp = torch.autograd.grad(
            sum((g * u).sum() for g, u in zip(grads, v, strict=True)), params, retain_graph=True
        )
        assert all(torch.isfinite(h).all() for h in hvp)
        assert any(h.abs().sum() > 0 for h in hvp)
    # mixed second derivative D_{θ_G θ_D}
    gd = torch.autograd.grad(loss_d, list(D.parameters()), create_graph=True)
    mixed = torch.autograd.grad(sum(g.sum() for g in gd), list(G.parameters()), allow_unused=True)
    assert any(m is not None and m.abs().sum() > 0 for m in mixed)
