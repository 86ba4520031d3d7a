"""ResNet GANs (SNGAN, Miyato et al. 2018; WGAN-GP, Gulrajani et al. 2017): shapes, exact parameter counts
derived layer by layer, block semantics, spectral norm, initialisation, gradients, training via the API."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

import saddlepoint as sp
from saddlepoint.errors import ConfigError
from saddlepoint.models import MODELS, build_models, native_resolution
from saddlepoint.models.resnet import DBlock, GBlock, OptimizedDBlock
from saddlepoint.training.checkpoint import load_checkpoint

NAMES = {"sngan-resnet32": 32, "sngan-resnet64": 64, "wgangp-resnet32": 32, "wgangp-resnet64": 64}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registered_with_resolution() -> None:
    for name, r in NAMES.items():
        assert name in MODELS.registered() and native_resolution(name) == r


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_shapes(name: str, channels: int) -> None:
    r = NAMES[name]
    G, D = build_models(name, (channels, r, r), 16, scale=0.125)
    assert G.z_dim == 16 and tuple(G.sample_shape) == (channels, r, r)
    x = G(torch.randn(5, 16))
    assert x.shape == (5, channels, r, r) and x.abs().max() <= 1  # tanh output
    assert D(x).shape == (5,) and D(torch.randn(5, channels, r, r)).shape == (5,)


# ------------------------------------------------------------------------------------------ parameter counts
# Derived from the papers' layer lists and the released code, independently of the module code. Conv weights are
# in·out·k² plus `out` biases; BatchNorm/LayerNorm carry a scale and a shift per channel; z_dim 128, C = 3.


def test_sngan_resnet32_exact_parameter_count() -> None:
    # Miyato et al. 2018, Table 4 (CIFAR-10 ResNet); sngan_projection gen_models/resnet_32.py (ch = 256).
    # Generator: every block upsamples, so its 1×1 shortcut is learnable.
    g_l1 = 128 * (4 * 4 * 256) + 4 * 4 * 256  # linear z → 4×4×256: 528,384
    g_block = (
        2 * 256  # b1 BN(256)
        + 256 * 256 * 9 + 256  # c1 conv3×3 256→256 (after ×2 upsampling)
        + 2 * 256  # b2 BN(256)
        + 256 * 256 * 9 + 256  # c2 conv3×3 256→256
        + 256 * 256 + 256  # c_sc conv1×1 256→256
    )
    assert g_block == 1_246_976
    g_out = 2 * 256 + 256 * 3 * 9 + 3  # b5 BN(256), c5 conv3×3 256→3: 7,427
    g_total = g_l1 + 3 * g_block + g_out
    assert g_total == 4_276_739  # the "≈ 4.3 M" usually quoted for SNGAN's CIFAR generator
    # Discriminator (dis_models/snresnet_32.py, ch = 128); hidden width of a block = its input width.
    d_opt = (3 * 128 * 9 + 128) + (128 * 128 * 9 + 128) + (3 * 128 + 128)  # c1, c2, c_sc: 151,680
    d_down = 2 * (128 * 128 * 9 + 128) + (128 * 128 + 128)  # c1, c2, c_sc (downsampling): 311,680
    d_plain = 2 * (128 * 128 * 9 + 128)  # c1, c2, identity shortcut: 295,168
    d_head = 128 + 1  # linear 128 → 1 after global sum pooling
    d_total = d_opt + d_down + 2 * d_plain + d_head
    assert (d_opt, d_down, d_plain) == (151_680, 311_680, 295_168)
    assert d_total == 1_053_825  # the "≈ 1.0 M" usually quoted
    G, D = build_models("sngan-resnet32", (3, 32, 32), 128)
    assert n_params(G) == g_total and n_params(D) == d_total


def test_sngan_resnet64_exact_parameter_count() -> None:
    # sngan_projection gen_models/resnet_64.py and dis_models/snresnet_64.py, ch = 64, unconditional.
    def g_block(i: int, o: int) -> int:  # b1 BN(i), c1 3×3 i→o, b2 BN(o), c2 3×3 o→o, c_sc 1×1 i→o
        return 2 * i + (i * o * 9 + o) + 2 * o + (o * o * 9 + o) + (i * o + o)

    g_l1 = 128 * (4 * 4 * 1024) + 4 * 4 * 1024  # 2,113,536
    blocks = [g_block(1024, 512), g_block(512, 256), g_block(256, 128), g_block(128, 64)]
    assert blocks == [7_606_784, 1_902_848, 476_288, 119_360]
    g_out = 2 * 64 + 64 * 3 * 9 + 3  # b6, l6: 1,859
    g_total = g_l1 + sum(blocks) + g_out
    assert g_total == 12_220_675

    def d_block(i: int, o: int) -> int:  # c1 3×3 i→i, c2 3×3 i→o, c_sc 1×1 i→o (every block downsamples)
        return (i * i * 9 + i) + (i * o * 9 + o) + (i * o + o)

    d_opt = (3 * 64 * 9 + 64) + (64 * 64 * 9 + 64) + (3 * 64 + 64)  # 38,976
    blocks = [d_block(64, 128), d_block(128, 256), d_block(256, 512), d_block(512, 1024)]
    assert blocks == [119_104, 475_776, 1_901_824, 7_604_736]
    d_total = d_opt + sum(blocks) + (1024 + 1)  # linear 1024 → 1 after global sum pooling
    assert d_total == 10_141_441
    G, D = build_models("sngan-resnet64", (3, 64, 64), 128)
    assert n_params(G) == g_total and n_params(D) == d_total


def test_wgangp_resnet32_exact_parameter_count() -> None:
    # gan_cifar_resnet.py, DIM_G = DIM_D = 128, CONDITIONAL = False (no ACGAN head), NORMALIZATION_D = False.
    g_input = 128 * (4 * 4 * 128) + 4 * 4 * 128  # Generator.Input: 264,192
    g_block = (
        2 * 128  # N1 BatchNorm(128): offset + scale
        + 128 * 128 * 9 + 128  # Conv1 (UpsampleConv) 3×3 128→128
        + 2 * 128  # N2
        + 128 * 128 * 9 + 128  # Conv2 3×3 128→128
        + 128 * 128 + 128  # Shortcut (UpsampleConv) 1×1 128→128
    )
    assert g_block == 312_192
    g_out = 2 * 128 + 128 * 3 * 9 + 3  # Generator.OutputN, Generator.Output 3×3 128→3
    g_total = g_input + 3 * g_block + g_out
    assert g_total == 1_204_483
    d_opt = (3 * 128 * 9 + 128) + (128 * 128 * 9 + 128) + (3 * 128 + 128)  # Conv1, Conv2, Shortcut
    d_down = 2 * (128 * 128 * 9 + 128) + (128 * 128 + 128)  # Discriminator.2 (down)
    d_plain = 2 * (128 * 128 * 9 + 128)  # Discriminator.3 and .4: identity shortcut
    d_total = d_opt + d_down + 2 * d_plain + (128 + 1)  # Discriminator.Output after mean pooling
    assert d_total == 1_053_825  # the same layer list as SNGAN's CIFAR D (sum instead of mean pooling)
    G, D = build_models("wgangp-resnet32", (3, 32, 32), 128)
    assert n_params(G) == g_total and n_params(D) == d_total


def test_wgangp_resnet64_exact_parameter_count() -> None:
    # gan_64x64.py GoodGenerator / GoodDiscriminator, DIM = 64. In ResidualBlock, Conv1 has biases=False.
    def g_block(i: int, o: int) -> int:  # BN1(i), Conv1 3×3 i→o no bias, BN2(o), Conv2 3×3 o→o, Shortcut 1×1
        return 2 * i + i * o * 9 + 2 * o + (o * o * 9 + o) + (i * o + o)

    g_input = 128 * (4 * 4 * 512) + 4 * 4 * 512  # 1,056,768
    blocks = [g_block(512, 512), g_block(512, 256), g_block(256, 128), g_block(128, 64)]
    assert blocks == [4_983_808, 1_902_592, 476_160, 119_296]
    g_total = g_input + sum(blocks) + 2 * 64 + (64 * 3 * 9 + 3)  # OutputN, Output
    assert g_total == 8_540_483

    def d_block(i: int, o: int) -> int:  # LN1(i), Conv1 3×3 i→i no bias, LN2(i), Conv2 3×3 i→o, Shortcut 1×1
        return 2 * i + i * i * 9 + 2 * i + (i * o * 9 + o) + (i * o + o)

    d_input = 3 * 64 * 9 + 64  # Discriminator.Input conv3×3: 1,792
    blocks = [d_block(64, 128), d_block(128, 256), d_block(256, 512), d_block(512, 512)]
    assert blocks == [119_296, 476_160, 1_902_592, 4_983_808]
    d_total = d_input + sum(blocks) + (4 * 4 * 512 + 1)  # Discriminator.Output on the flattened 4×4×512
    assert d_total == 7_491_841
    G, D = build_models("wgangp-resnet64", (3, 64, 64), 128)
    assert n_params(G) == g_total and n_params(D) == d_total


# ------------------------------------------------------------------------------------------ structure


# (G block outputs (channels, side), D stem + block outputs (channels, side)) at the default width
LAYOUT = {
    "sngan-resnet32": ([(256, 8), (256, 16), (256, 32)], [(128, 16), (128, 8), (128, 8), (128, 8)]),
    "sngan-resnet64": ([(512, 8), (256, 16), (128, 32), (64, 64)],
                       [(64, 32), (128, 16), (256, 8), (512, 4), (1024, 2)]),
    "wgangp-resnet32": ([(128, 8), (128, 16), (128, 32)], [(128, 16), (128, 8), (128, 8), (128, 8)]),
    "wgangp-resnet64": ([(512, 8), (256, 16), (128, 32), (64, 64)],
                        [(64, 64), (128, 32), (256, 16), (512, 8), (512, 4)]),
}


@pytest.mark.parametrize("name", NAMES)
def test_layout_norms_and_head(name: str) -> None:
    r = NAMES[name]
    G, D = build_models(name, (3, r, r), 128)
    G.eval()
    seen: list[tuple[int, int]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((out.shape[1], out.shape[-1])))
             for m in [*G.blocks, D.stem, *D.blocks]]
    with torch.no_grad():
        x = G(torch.randn(1, 128))
        D(x)
    for h in hooks:
        h.remove()
    g_layout, d_layout = LAYOUT[name]
    assert seen == g_layout + d_layout
    bottom = {"sngan-resnet32": 256, "sngan-resnet64": 1024, "wgangp-resnet32": 128, "wgangp-resnet64": 512}[name]
    assert (G.project.in_features, G.project.out_features) == (128, 4 * 4 * bottom)
    # no BatchNorm in any critic/discriminator; LayerNorm (GroupNorm with one group) only in WGAN-GP's 64×64 one
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    lns = [m for m in D.modules() if isinstance(m, nn.GroupNorm)]
    assert all(m.num_groups == 1 for m in lns) and len(lns) == (8 if name == "wgangp-resnet64" else 0)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 2 * len(G.blocks) + 1
    first_conv_bias = name != "wgangp-resnet64"
    assert all((b.c1.bias is not None) == first_conv_bias for b in [*G.blocks, *D.blocks])
    assert isinstance(D.stem, OptimizedDBlock) == (name != "wgangp-resnet64")


@pytest.mark.parametrize("name,pool", [("sngan-resnet32", "sum"), ("sngan-resnet64", "sum"),
                                       ("wgangp-resnet32", "mean"), ("wgangp-resnet64", "flatten")])
def test_head_pooling(name: str, pool: str) -> None:
    r = NAMES[name]
    _, D = build_models(name, (3, r, r), 8, scale=0.125)
    D.eval()  # in training mode every forward would take a power-iteration step of the spectral norm
    feats: list[torch.Tensor] = []
    D.blocks.register_forward_hook(lambda mod, inp, out: feats.append(out))
    x = torch.randn(2, 3, r, r)
    out = D(x)
    h = feats[0]
    want = {"sum": lambda: F.relu(h).sum((2, 3)), "mean": lambda: F.relu(h).mean((2, 3)),
            "flatten": lambda: h.flatten(1)}[pool]()
    torch.testing.assert_close(D.features(x), want)
    torch.testing.assert_close(out, D.head(want).reshape(-1))


def test_blocks_match_the_reference_formulas() -> None:
    """GBlock, DBlock and OptimizedDBlock against the released code's order of operations, written with
    explicit nearest-neighbour upsampling (pixel repetition) and conv-then-pool shortcuts."""
    def up(t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    x = torch.randn(2, 4, 6, 6)
    g = GBlock(4, 5).eval()
    with torch.no_grad():
        for bn in (g.b1, g.b2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    ref = g.c2(F.relu(g.b2(g.c1(up(F.relu(g.b1(x))))))) + g.c_sc(up(x))
    torch.testing.assert_close(g(x), ref)
    for down, cout in ((True, 5), (False, 5), (False, 4)):
        d = DBlock(4, cout, down, layer_norm=True)
        h = d.c2(F.relu(d.n2(d.c1(F.relu(d.n1(x))))))
        sc = x if d.c_sc is None else d.c_sc(x)
        ref = (F.avg_pool2d(h, 2) + F.avg_pool2d(sc, 2)) if down else h + sc
        torch.testing.assert_close(d(x), ref)
        assert (d.c_sc is None) == (not down and cout == 4)
    o = OptimizedDBlock(4, 5)
    ref = F.avg_pool2d(o.c2(F.relu(o.c1(x))), 2) + o.c_sc(F.avg_pool2d(x, 2))
    torch.testing.assert_close(o(x), ref)


# ------------------------------------------------------------------------------------------ options


@pytest.mark.parametrize("name,default", [("sngan-resnet32", True), ("sngan-resnet64", True),
                                          ("wgangp-resnet32", False), ("wgangp-resnet64", False)])
def test_spectral_norm_option(name: str, default: bool) -> None:
    r = NAMES[name]
    for option, on in ((None, default), (True, True), (False, False)):
        kwargs = {} if option is None else {"spectral_norm": option}
        G, D = build_models(name, (3, r, r), 8, scale=0.125, **kwargs)
        layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert all(("weight" in getattr(m, "parametrizations", {})) == on for m in layers)
        assert not any(hasattr(m, "parametrizations") for m in G.modules())
    if default:  # at initialisation σ(W) ≈ 1 after the power iterations done at registration
        _, D = build_models(name, (3, r, r), 8, scale=0.125)
        w = D.head.weight.detach()
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=1e-3)


def test_reference_initialisation() -> None:
    G, D = build_models("sngan-resnet32", (3, 32, 32), 128, spectral_norm=False)
    block = G.blocks[0]
    for conv, gain in ((block.c1, math.sqrt(2)), (block.c2, math.sqrt(2)), (block.c_sc, 1.0)):
        fan_in, fan_out = conv.in_channels * conv.kernel_size[0] ** 2, conv.out_channels * conv.kernel_size[0] ** 2
        bound = gain * math.sqrt(6 / (fan_in + fan_out))  # Glorot uniform
        w = conv.weight.detach()
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
        assert torch.all(conv.bias == 0)
    assert torch.all(G.blocks[0].b1.weight == 1) and torch.all(G.blocks[0].b1.bias == 0)
    assert G.out_conv.weight.abs().max() <= math.sqrt(6 / (256 * 9 + 3 * 9))  # gain 1 on the output conv
    G, _ = build_models("wgangp-resnet64", (3, 64, 64), 128, scale=0.5)
    assert G.out_conv.weight.abs().max() > math.sqrt(6 / (32 * 9 + 3 * 9))  # gan_64x64.py: he_init there
    G, _ = build_models("wgangp-resnet32", (3, 32, 32), 128, init="normal")
    assert abs(G.blocks[0].c1.weight.std().item() - 0.02) < 0.002


def test_options_filtered_and_validated() -> None:
    G, _ = build_models("sngan-resnet32", (3, 32, 32), 8, scale=0.125, batchnorm_d=True, width=3)
    assert G.z_dim == 8
    bad = [
        ("sngan-resnet32", (3, 32, 32), {"scale": 0}, "model.scale"),
        ("sngan-resnet64", (3, 64, 64), {"spectral_norm": "yes"}, "model.spectral_norm"),
        ("wgangp-resnet32", (3, 32, 32), {"init": "orthogonal"}, "model.init"),
        ("wgangp-resnet64", (3, 32, 32), {}, "model.name"),
        ("sngan-resnet32", (32, 32), {}, "model.name"),
    ]
    for name, shape, options, where in bad:
        with pytest.raises(ConfigError, match=where):
            build_models(name, shape, 8, **options)


# ------------------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name: str) -> None:
    r = NAMES[name]
    G, D = build_models(name, (3, r, r), 8, scale=0.125)
    fake, real = G(torch.randn(4, 8)), torch.randn(4, 3, r, r)
    (D(fake).square().mean() + D(real).square().mean()).backward()  # a loss whose bias gradient is not 0
    for player in (G, D):
        for pname, p in player.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ["sngan-resnet32", "wgangp-resnet64"])
def test_double_backward(name: str) -> None:
    """A Hessian-vector product through D and the mixed derivative D_{θ_G θ_D} (second-order optimizers)."""
    r = NAMES[name]
    G, D = build_models(name, (3, r, r), 8, scale=0.0625)
    loss = F.softplus(-D(torch.randn(4, 3, r, r))).mean() + F.softplus(D(G(torch.randn(4, 8)))).mean()
    params = list(D.parameters())
    grads = torch.autograd.grad(loss, params, create_graph=True)
    hvp = torch.autograd.grad(sum((g * torch.randn_like(g)).sum() for g in grads), params, retain_graph=True)
    assert all(torch.isfinite(h).all() for h in hvp) and any(h.abs().sum() > 0 for h in hvp)
    mixed = torch.autograd.grad(sum(g.sum() for g in grads), list(G.parameters()), allow_unused=True)
    assert any(m is not None and m.abs().sum() > 0 for m in mixed)


@pytest.mark.parametrize("name", ["sngan-resnet32", "wgangp-resnet64"])
def test_channels_last(name: str) -> None:
    r = NAMES[name]
    G, D = build_models(name, (3, r, r), 8, scale=0.125)
    G.eval()
    D.eval()
    z, x = torch.randn(3, 8), torch.randn(3, 3, r, r)
    ref_g, ref_d = G(z), D(x)
    G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    torch.testing.assert_close(G(z), ref_g, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(D(x.to(memory_format=torch.channels_last)), ref_d, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------ training


def _image_folder(root, n: int = 8, grey: bool = False):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shape = (40, 40) if grey else (40, 40, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / f"{i}.png")
    return root


def _config(name: str, root, loss: dict, **data) -> dict:
    return {
        "data": {"name": "folder", "root": str(root), **data},
        "model": {"name": name, "z_dim": 8, "scale": 0.0625},
        "loss": loss,
        "train": {"steps": 2, "batch_size": 4, "ema": 0.0},
        "log": {"every": 1, "progress": "none", "report": False},
        "eval": {"samples": 8},
    }


HINGE = {"name": "hinge"}
WGAN_GP = {"name": "wgan", "penalty": ["gp"]}


@pytest.mark.parametrize(
    "name,loss,grey",
    [("sngan-resnet32", HINGE, False), ("sngan-resnet64", HINGE, True),
     ("wgangp-resnet32", WGAN_GP, True), ("wgangp-resnet64", WGAN_GP, False)],
    ids=["sngan32-hinge-rgb", "sngan64-hinge-grey", "wgangp32-gp-grey", "wgangp64-gp-rgb"],
)
def test_trains_through_the_public_api(name: str, loss: dict, grey: bool, tmp_path) -> None:
    root = _image_folder(tmp_path / "images", grey=grey)
    run = sp.train(_config(name, root, loss), tmp_path / "run")
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    samples = sp.sample(run, n=3, seed=0)
    r, c = NAMES[name], 1 if grey else 3
    assert samples.shape == (3, c, r, r) and samples.abs().max() <= 1 and torch.isfinite(samples).all()


def test_trains_on_the_shared_cifar_images(shared_data, tmp_path) -> None:
    cifar = shared_data / "cifar10-test-jpeg"
    if not cifar.is_dir():
        pytest.skip("shared CIFAR-10 JPEGs not present")
    run = sp.train(_config("sngan-resnet32", cifar, HINGE, limit=16), tmp_path / "run")
    assert sp.sample(run, n=2, seed=1).shape == (2, 3, 32, 32)
