"""Image folders, npz arrays and scikit-learn digits."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from saddlepoint.data import (
    PointDataset,
    build_dataset,
)
from saddlepoint.errors import DataError

from .helpers import (
    CIFAR,
    assert_close,
    gen,
    save,
)


def test_folder_classes_and_conversion(tmp_path):
    root = tmp_path / "imgs"
    save(root / "dog" / "b.png", np.full((8, 8, 3), (255, 0, 0), np.uint8))  # red
    save(root / "dog" / "a.png", np.full((8, 8), 200, np.uint8))  # grey
    save(root / "cat" / "deep" / "x.bmp", np.full((8, 8, 3), (0, 0, 255), np.uint8))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    save(root / ".hidden" / "h.png", np.zeros((8, 8), np.uint8))

    ds = build_dataset("folder", root=str(root))
    # sorted by relative path: cat/deep/x.bmp, dog/a.png, dog/b.png
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 1, 1]
    assert ds.images.shape == (3, 3, 8, 8)  # a grey/colour mix becomes RGB
    assert torch.allclose(ds.images[1], torch.full((3, 8, 8), 200 / 127.5 - 1))  # grey → RGB repeat
    assert ds.images[2, :, 0, 0].tolist() == [1.0, -1.0, -1.0]

    grey = build_dataset("folder", root=str(root), channels=1)
    assert grey.images.shape == (3, 1, 8, 8)
    assert grey.images[2, 0, 0, 0].item() == pytest.approx(76 / 127.5 - 1)  # BT.601 luma of red
    assert grey.images[0, 0, 0, 0].item() == pytest.approx(29 / 127.5 - 1)  # and of blue

    small = build_dataset("folder", root=str(root), resolution=4, limit=2)
    assert small.images.shape == (2, 3, 4, 4) and small.labels.tolist() == [0, 1]
    assert torch.allclose(small.images[1], torch.full((3, 4, 4), 200 / 127.5 - 1), atol=1e-6)


def test_folder_resize_crop_and_flat_layout(tmp_path):
    board = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)  # 1-pixel checkerboard
    save(tmp_path / "board.png", board)
    wide = np.zeros((10, 20), np.uint8)
    wide[:, 5:15] = 255  # centre square white, side bands black
    save(tmp_path / "wide.png", wide)
    ds = build_dataset("folder", root=str(tmp_path), resolution=8)
    assert ds.labels is None and ds.classes is None and ds.images.shape == (2, 1, 8, 8)
    assert ds.images[0].abs().max().item() < 0.05  # antialiased 2× downscale averages to mid-grey
    assert ds.images[1].min().item() > 0.99  # centre crop keeps the white square only
    with pytest.raises(DataError, match="differ in size"):
        build_dataset("folder", root=str(tmp_path))


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match=r"data\.root: directory .*missing does not exist"):
        build_dataset("folder", root=str(tmp_path / "missing"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(DataError, match="no images in"):
        build_dataset("folder", root=str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    save(bad / "ok.png", np.zeros((4, 4), np.uint8))
    (bad / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"zz_broken\.png: cannot read image"):
        build_dataset("folder", root=str(bad))
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    (trunc / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg"):
        build_dataset("folder", root=str(trunc))


@pytest.mark.skipif(not CIFAR.is_dir(), reason="shared CIFAR-10 JPEGs not present")
def test_folder_cifar10_jpeg():
    t0 = time.perf_counter()
    ds = build_dataset("folder", root=str(CIFAR), limit=2000)  # full 10,000: ~1.5 s on this machine
    elapsed = time.perf_counter() - t0
    assert elapsed < 6, f"loading 2,000 JPEGs took {elapsed:.1f} s"
    assert ds.images.shape == (2000, 3, 32, 32) and ds.images.dtype == torch.float32
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    assert len(ds.classes) == 10 and ds.classes[:2] == ["airplane", "automobile"]
    assert torch.bincount(ds.labels).tolist() == [1000, 1000]  # first N in sorted path order
    first = np.array(Image.open(CIFAR / "airplane" / "0000.jpg").convert("RGB"))
    assert_close(ds.images[0], torch.from_numpy(first).permute(2, 0, 1).float() / 127.5 - 1)

    lim = build_dataset("folder", root=str(CIFAR), resolution=28, channels=1, limit=300)
    assert lim.images.shape == (300, 1, 28, 28) and lim.labels.tolist() == [0] * 300
    assert lim.images.min() >= -1 and lim.images.max() <= 1


# ------------------------------------------------------------------------------------------------ npz


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (6, 5, 7, 3), dtype=np.uint8)  # N×H×W×C
    np.savez(tmp_path / "nhwc.npz", x=u8, y=np.arange(6))
    ds = build_dataset("npz", root=str(tmp_path / "nhwc.npz"))
    assert ds.images.shape == (6, 3, 5, 7) and ds.labels.tolist() == list(range(6))
    assert_close(ds.images, torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1)

    f = rng.uniform(-1, 1, (4, 1, 6, 6)).astype(np.float32)  # N×C×H×W in [-1, 1]: kept
    np.savez(tmp_path / "nchw.npz", images=f, labels=np.array([3, 1, 2, 0]))
    ds = build_dataset("npz", root=str(tmp_path / "nchw.npz"), resolution=6, channels=3)
    assert ds.images.shape == (4, 3, 6, 6) and ds.labels.tolist() == [3, 1, 2, 0]
    assert_close(ds.images[:, 1:2], torch.from_numpy(f))

    unit = rng.uniform(0, 1, (3, 8, 8))  # N×H×W float64 in [0, 1] → 2x − 1
    np.save(tmp_path / "unit.npy", unit)
    ds = build_dataset("npz", root=str(tmp_path / "unit.npy"), resolution=4)
    assert ds.images.shape == (3, 1, 4, 4)
    assert build_dataset("npz", root=str(tmp_path / "unit.npy")).images[:, 0].numpy() == pytest.approx(
        2 * unit - 1, abs=1e-6
    )

    wide = rng.uniform(-3, 10, (5, 4, 4)).astype(np.float32)  # other ranges: min-max scaled
    np.savez(tmp_path / "only.npz", data=wide, y=np.arange(5))
    ds = build_dataset("npz", root=str(tmp_path / "only.npz"), limit=2)
    assert ds.images.shape == (2, 1, 4, 4)
    lo, hi = wide.min(), wide.max()
    assert ds.images[:, 0].numpy() == pytest.approx((wide[:2] - lo) / (hi - lo) * 2 - 1, abs=1e-5)
    assert ds.labels.tolist() == [0, 1]


def test_npz_points_and_errors(tmp_path):
    pts = np.random.default_rng(1).normal(size=(50, 2))
    np.savez(tmp_path / "pts.npz", x=pts, centers=np.zeros((1, 2)), std=np.array(1.0))
    ds = build_dataset("npz", root=str(tmp_path / "pts.npz"))
    assert isinstance(ds, PointDataset) and ds.kind == "points" and ds.std == 1.0
    assert ds.centers.shape == (1, 2)
    drawn = ds.sample(50, gen())
    assert sorted(map(tuple, drawn.tolist())) == sorted(map(tuple, pts.astype(np.float32).tolist()))
    np.save(tmp_path / "bare.npy", pts)
    bare = build_dataset("npz", root=str(tmp_path / "bare.npy"))
    assert bare.centers is None and bare.std is None and len(bare) == 50

    cases = {
        "five.npz": (dict(x=np.zeros((4, 5))), "N×2"),
        "rgba.npz": (dict(x=np.zeros((4, 8, 8, 4), np.uint8)), "C = 1 or 3"),
        "nan.npz": (dict(x=np.full((2, 4, 4), np.nan)), "NaN"),
        "two.npz": (dict(a=np.zeros((2, 4, 4)), b=np.zeros((2, 4, 4))), "no array named"),
        "labels.npz": (dict(x=np.zeros((3, 4, 4), np.uint8), y=np.arange(2)), "2 labels for 3"),
        "strs.npz": (dict(x=np.array(["a", "b"])), "numeric"),
    }
    for fname, (arrays, msg) in cases.items():
        np.savez(tmp_path / fname, **arrays)
        with pytest.raises(DataError, match=msg) as info:
            build_dataset("npz", root=str(tmp_path / fname))
        assert "\n" not in str(info.value)
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match=r"corrupt\.npz: cannot read"):
        build_dataset("npz", root=str(tmp_path / "corrupt.npz"))
    with pytest.raises(DataError, match=r"data\.root: file .* does not exist"):
        build_dataset("npz", root=str(tmp_path / "absent.npz"))
    with pytest.raises(DataError, match="is a directory"):
        build_dataset("npz", root=str(tmp_path))


# ------------------------------------------------------------------------------------------------ digits


def test_digits():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = build_dataset("digits")
    assert ds.images.shape == (1797, 1, 8, 8) and ds.images.min() == -1 and ds.images.max() == 1
    assert_close(ds.images[:, 0], torch.from_numpy(ref.images).float() / 8 - 1)
    assert ds.labels.tolist() == ref.target.tolist()
    big = build_dataset("digits", resolution=28, channels=3, limit=10)
    assert big.sample_shape == (3, 28, 28) and len(big) == 10
    assert big.images.min() >= -1 and big.images.max() <= 1
