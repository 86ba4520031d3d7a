"""DCGAN models: the seed 28×28 layers and exact parameter counts, the standard 32/64 structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saddlepoint.models import build_models


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_dcgan28_layer_shapes() -> None:
    G, D = build_models("dcgan28", (1, 28, 28), 100)
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: seen.append((type(mod).__name__, tuple(out.shape))))
        for m in list(G.modules()) + list(D.modules())
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))
    ]
    D(G(torch.randn(2, 100)))
    for h in hooks:
        h.remove()
    assert seen == [
        ("Linear", (2, 7 * 7 * 256)),
        ("ConvTranspose2d", (2, 128, 7, 7)),
        ("ConvTranspose2d", (2, 64, 14, 14)),
        ("ConvTranspose2d", (2, 1, 28, 28)),
        ("Conv2d", (2, 64, 14, 14)),
        ("Conv2d", (2, 128, 7, 7)),
        ("Linear", (2, 1)),
    ]
    kinds = [type(m).__name__ for m in D.net]
    assert kinds == ["Conv2d", "LeakyReLU", "Dropout", "Conv2d", "LeakyReLU", "Dropout", "Flatten", "Linear"]
    assert [m.p for m in D.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert all(m.bias is None for m in G.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d)))


def test_dcgan28_exact_parameter_count() -> None:
    # Generator, z_dim = 100, one channel (bias-free Dense/ConvT, as in the TF tutorial):
    g_dense = 100 * (7 * 7 * 256)  # 1,254,400
    g_bn1 = 2 * 7 * 7 * 256  # 25,088 (scale + shift)
    g_ct1 = 256 * 128 * 5 * 5  # 819,200
    g_bn2 = 2 * 128  # 256
    g_ct2 = 128 * 64 * 5 * 5  # 204,800
    g_bn3 = 2 * 64  # 128
    g_ct3 = 64 * 1 * 5 * 5  # 1,600
    g_total = g_dense + g_bn1 + g_ct1 + g_bn2 + g_ct2 + g_bn3 + g_ct3
    assert g_total == 2_305_472  # the tutorial's "Trainable params"
    # Discriminator (with biases):
    d_c1 = 1 * 64 * 5 * 5 + 64  # 1,664
    d_c2 = 64 * 128 * 5 * 5 + 128  # 204,928
    d_fc = 128 * 7 * 7 + 1  # 6,273
    d_total = d_c1 + d_c2 + d_fc
    assert d_total == 212_865
    G, D = build_models("dcgan28", (1, 28, 28), 100)
    assert n_params(G) == g_total
    assert n_params(D) == d_total


def test_dcgan28_scale_scales_channels() -> None:
    G, D = build_models("dcgan28", (1, 28, 28), 100, scale=0.5)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(128, 64), (64, 32), (32, 1)]
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 32), (32, 64)]
    assert n_params(G) < 2_305_472 / 2


@pytest.mark.parametrize("name,res,ngf_mult", [("dcgan32", 32, 4), ("dcgan64", 64, 8)])
def test_standard_dcgan_structure(name: str, res: int, ngf_mult: int) -> None:
    G, D = build_models(name, (3, res, res), 100)
    ct = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert ct[0].in_channels == 100 and ct[0].out_channels == 64 * ngf_mult
    assert ct[0].kernel_size == (4, 4) and ct[0].stride == (1, 1) and ct[0].padding == (0, 0)
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in ct[1:])
    assert ct[-1].out_channels == 3 and ct[-2].out_channels == 64
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == len(ct) - 1
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].out_channels == 64 and convs[-2].out_channels == 64 * ngf_mult
    assert convs[-1].out_channels == 1 and convs[-1].kernel_size == (4, 4)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == len(convs) - 2
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, nn.LeakyReLU))
    # ngf = ndf = 64 · scale
    G2, D2 = build_models(name, (3, res, res), 100, scale=0.5)
    assert [m for m in G2.modules() if isinstance(m, nn.ConvTranspose2d)][-2].out_channels == 32


@pytest.mark.parametrize("name,res", [("dcgan28", 28), ("dcgan32", 32)])
def test_channels_last(name: str, res: int) -> None:
    G, D = build_models(name, (3, res, res), 8, width=0.25)
    G.eval()
    D.eval()
    z = torch.randn(3, 8)
    x = torch.randn(3, 3, res, res)
    ref_d, ref_g = D(x), G(z)
    G = G.to(memory_format=torch.channels_last)
    D = D.to(memory_format=torch.channels_last)
    torch.testing.assert_close(D(x.to(memory_format=torch.channels_last)), ref_d, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(G(z), ref_g, rtol=1e-4, atol=1e-5)
