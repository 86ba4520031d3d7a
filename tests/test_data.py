"""Datasets: PacGAN 2-D mixtures, the idx reader and MNIST, image folders, npz files, digits, streams."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import io
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from saddlepoint.data import (
    DATASETS,
    Dataset,
    ImageDataset,
    PointDataset,
    build_dataset,
    convert_images,
    load_mnist_t10k,
    read_idx,
)
from saddlepoint.errors import CheckpointError, ConfigError, DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR = SHARED_DATA / "cifar10-test-jpeg"
MNIST_ASSETS = importlib.resources.files("saddlepoint") / "assets" / "mnist"
T10K_IMAGES_MD5 = "2646ac647ad5339dbf082846283269ea"
T10K_LABELS_MD5 = "27ae3e4e09519cfbb04c329615203637"


def assert_close(got: torch.Tensor, want: torch.Tensor, atol: float = 1e-6) -> None:
    # (torch.testing.assert_close imports torch.distributed.tensor: ~2 s per test session)
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = (got.double() - want.double()).abs().max().item()
    assert diff <= atol, f"max abs difference {diff}"


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registry_names_and_interface():
    for name in ("ring", "grid", "mnist", "mnist-t10k", "stacked-mnist", "digits", "folder", "npz"):
        assert name in DATASETS
    with pytest.raises(ConfigError, match="data.name"):
        build_dataset("no-such-data")
    with pytest.raises(ConfigError, match="limit"):
        build_dataset("digits", limit=0)
    for name in ("mnist", "folder", "npz"):
        with pytest.raises(DataError, match="data.root"):
            build_dataset(name)


# ------------------------------------------------------------------------------------------------ 2-D


def test_ring_centers_protocol():
    ds = build_dataset("ring")
    assert isinstance(ds, PointDataset) and ds.kind == "points" and ds.sample_shape == (2,)
    c = ds.centers.double()
    assert c.shape == (8, 2) and ds.std == 0.01
    assert torch.allclose(c.norm(dim=1), torch.ones(8, dtype=torch.float64), atol=1e-12)
    for k in range(8):  # (cos 2πk/8, sin 2πk/8), k = 0..7: no repeated endpoint
        assert c[k].tolist() == pytest.approx([math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)])
    d = torch.cdist(c, c) + torch.eye(8, dtype=torch.float64) * 10
    assert d.min().item() == pytest.approx(2 * math.sin(math.pi / 8))  # 8 distinct, evenly spaced


def test_grid_centers_protocol():
    ds = build_dataset("grid")
    assert ds.centers.shape == (25, 2) and ds.std == 0.05
    got = {tuple(p) for p in ds.centers.tolist()}
    assert got == {(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_samples(name):
    ds = build_dataset(name)
    x = ds.sample(40_000, gen(1))
    assert x.shape == (40_000, 2) and x.dtype == torch.float32
    c = ds.centers.float()
    nearest = torch.cdist(x, c).argmin(dim=1)
    resid = x - c[nearest]
    assert resid.mean(dim=0).abs().max().item() < 0.05 * ds.std
    assert resid.std(dim=0).tolist() == pytest.approx([ds.std, ds.std], rel=0.05)
    counts = torch.bincount(nearest, minlength=len(c)).double()
    expected = 40_000 / len(c)
    assert (counts - expected).abs().max().item() < 5 * math.sqrt(expected)  # uniform mode weights
    # seeded reproducibility; different seeds differ; no stream state
    assert torch.equal(ds.sample(100, gen(7)), build_dataset(name).sample(100, gen(7)))
    assert not torch.equal(ds.sample(100, gen(7)), ds.sample(100, gen(8)))
    assert ds.state_dict() == {}
    ds.load_state_dict({})
    with pytest.raises(ValueError):
        ds.sample(0, gen())


# ------------------------------------------------------------------------------------------------ idx


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def bundled_bytes(name: str) -> bytes:
    return (MNIST_ASSETS / name).read_bytes()


def test_read_idx_bundled_t10k(tmp_path):
    gz = bundled_bytes("t10k-images-idx3-ubyte.gz")
    raw = gzip.decompress(gz)
    assert hashlib.md5(raw).hexdigest() == T10K_IMAGES_MD5
    with importlib.resources.as_file(MNIST_ASSETS / "t10k-images-idx3-ubyte.gz") as p:
        images = read_idx(p, expect_magic=2051)
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert images.tobytes() == raw[16:]
    (tmp_path / "raw-idx").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-idx", 2051), images)  # raw == gz

    imgs, labels = load_mnist_t10k()
    assert torch.equal(imgs, torch.from_numpy(images))
    raw_labels = gzip.decompress(bundled_bytes("t10k-labels-idx1-ubyte.gz"))
    assert hashlib.md5(raw_labels).hexdigest() == T10K_LABELS_MD5
    assert labels.dtype == torch.int64 and labels.shape == (10_000,)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_read_idx_dtypes_and_errors(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    (tmp_path / "ints").write_bytes(idx_bytes(a, 0x0C))
    np.testing.assert_array_equal(read_idx(tmp_path / "ints"), a)
    f = np.linspace(-1, 1, 6).astype(np.float32)
    (tmp_path / "floats.gz").write_bytes(gzip.compress(idx_bytes(f, 0x0D)))
    np.testing.assert_array_equal(read_idx(tmp_path / "floats.gz"), f)

    img = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    data = idx_bytes(img)
    bad = tmp_path / "short-images-idx3-ubyte"
    bad.write_bytes(data[:-10])
    with pytest.raises(DataError, match=r"short-images-idx3-ubyte.*truncated"):
        read_idx(bad, 2051)
    (tmp_path / "hdr").write_bytes(data[:10])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "hdr")
    (tmp_path / "long").write_bytes(data + b"\0\0")
    with pytest.raises(DataError, match="beyond"):
        read_idx(tmp_path / "long")
    with pytest.raises(DataError, match=r"magic.*2049"):  # an image file where labels are expected
        (tmp_path / "img").write_bytes(data)
        read_idx(tmp_path / "img", 2049)
    (tmp_path / "junk").write_bytes(b"\x12\x34\x08\x03" + data[4:])
    with pytest.raises(DataError, match="junk.*not an idx file"):
        read_idx(tmp_path / "junk")
    gzdata = gzip.compress(data)
    (tmp_path / "cut.gz").write_bytes(gzdata[: len(gzdata) // 2])
    with pytest.raises(DataError, match=r"cut\.gz.*gzip"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "missing")


def write_mnist(folder: Path, stem: str, n: int, *, gz: bool, labels: int | None = None, seed: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    lab = rng.integers(0, 10, labels if labels is not None else n, dtype=np.uint8)
    sfx = ".gz" if gz else ""
    pack = gzip.compress if gz else (lambda b: b)
    (folder / f"{stem}-images-idx3-ubyte{sfx}").write_bytes(pack(idx_bytes(img)))
    (folder / f"{stem}-labels-idx1-ubyte{sfx}").write_bytes(pack(idx_bytes(lab)))
    return img, lab


def test_mnist_builder_layouts(tmp_path):
    img, lab = write_mnist(tmp_path / "a" / "MNIST" / "raw", "t10k", 6, gz=True)
    ds = build_dataset("mnist", root=str(tmp_path / "a"))
    assert isinstance(ds, ImageDataset) and ds.kind == "images" and ds.sample_shape == (1, 28, 28)
    assert_close(ds.images[:, 0], torch.from_numpy(img).float() / 127.5 - 1)
    assert ds.labels.tolist() == lab.tolist()
    # train preferred over t10k; raw files directly in root
    write_mnist(tmp_path / "b", "t10k", 4, gz=False, seed=1)
    train, _ = write_mnist(tmp_path / "b", "train", 9, gz=False, seed=2)
    ds = build_dataset("mnist", root=str(tmp_path / "b"), resolution=32, channels=3, limit=5)
    assert ds.images.shape == (5, 3, 32, 32)
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    assert torch.equal(ds.images[:, 0], ds.images[:, 2])
    # label count mismatch, missing dir, empty dir
    write_mnist(tmp_path / "c", "t10k", 6, gz=True, labels=5)
    with pytest.raises(DataError, match="5 labels for 6 images"):
        build_dataset("mnist", root=str(tmp_path / "c"))
    with pytest.raises(DataError, match=r"data\.root: directory .* does not exist"):
        build_dataset("mnist", root=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no MNIST idx files"):
        build_dataset("mnist", root=str(tmp_path / "empty"))


def test_mnist_t10k_and_stacked():
    ds = build_dataset("mnist-t10k")
    assert ds.images.shape == (10_000, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.images.min().item() == -1.0 and ds.images.max().item() == 1.0
    imgs, labels = load_mnist_t10k()
    assert torch.equal(ds.images[3, 0], imgs[3].float() / 127.5 - 1) and torch.equal(ds.labels, labels)

    st = build_dataset("stacked-mnist", limit=2000)
    assert st.images.shape == (2000, 3, 28, 28) and st.labels.max() < 1000
    assert len(st.labels.unique()) > 800  # ~1,000 modes
    flat = ds.images.flatten(1)
    for i in range(3):  # every channel is an MNIST digit whose class gives that label digit
        for c, div in enumerate((100, 10, 1)):
            j = (flat == st.images[i, c].flatten()).all(dim=1).nonzero()[0, 0]
            assert ds.labels[j] == st.labels[i] // div % 10
    assert torch.equal(build_dataset("stacked-mnist", limit=50).images, st.images[:50])  # fixed seed
    with pytest.raises(DataError, match="3 channels"):
        build_dataset("stacked-mnist", channels=1)


# ------------------------------------------------------------------------------------------------ folder


def save(path: Path, arr: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


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


# ------------------------------------------------------------------------------------------------ stream


def coded(n: int) -> ImageDataset:
    """n tiny images, image i filled with value i / n (so each sample names its index)."""
    x = (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return ImageDataset(x, torch.arange(n), name="coded")


def ids(batch: torch.Tensor, n: int) -> list[int]:
    return torch.round(batch[:, 0, 0, 0] * n).long().tolist()


def test_stream_epochs_visit_each_image_once():
    n = 10
    ds = coded(n)
    g = gen(3)
    drawn = []
    for size in (3, 3, 4, 7, 6, 7):  # 30 draws = 3 epochs, batches straddling epoch boundaries
        b = ds.sample(size, g)
        assert b.shape == (size, 1, 2, 2) and b.dtype == torch.float32
        drawn += ids(b, n)
    epochs = [drawn[i : i + n] for i in range(0, 30, n)]
    for e in epochs:
        assert sorted(e) == list(range(n))
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # reshuffled per epoch
    assert ds.state_dict()["epoch"] == 3 and ds.state_dict()["position"] == n


def test_stream_state_round_trip(tmp_path):
    ds = coded(13)
    g = gen(5)
    for _ in range(3):
        ds.sample(5, g)
    torch.save({"data": ds.state_dict(), "rng": g.get_state()}, tmp_path / "ck.pt")
    expected = [ds.sample(4, g) for _ in range(8)]

    ck = torch.load(tmp_path / "ck.pt", weights_only=True)  # plain ints/tensors only
    fresh = coded(13)
    g2 = torch.Generator()
    g2.set_state(ck["rng"])
    fresh.load_state_dict(ck["data"])
    for want in expected:
        assert torch.equal(fresh.sample(4, g2), want)

    with pytest.raises(CheckpointError, match="13 samples"):
        coded(12).load_state_dict(ck["data"])
    with pytest.raises(CheckpointError):
        build_dataset("ring").load_state_dict({"position": 1})
    # a fresh dataset state round-trips too (no permutation drawn yet)
    empty = coded(4).state_dict()
    other = coded(4)
    other.load_state_dict(empty)
    assert torch.equal(other.sample(4, gen(1)), coded(4).sample(4, gen(1)))


def test_convert_images_and_base_class():
    x = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 4, 6)  # red, 4×6
    g = convert_images(x, resolution=2, channels=1)
    assert g.shape == (1, 1, 2, 2)
    assert g.flatten().tolist() == pytest.approx([0.299 - 0.587 - 0.114] * 4, abs=1e-6)
    assert convert_images(torch.zeros(2, 1, 3, 3)).shape == (2, 1, 3, 3)
    with pytest.raises(NotImplementedError):
        Dataset().sample(1, gen())
