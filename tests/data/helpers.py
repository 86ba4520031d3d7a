"""Helpers shared by the data tests."""

from __future__ import annotations

import gzip
import importlib.resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from saddlepoint.data import (
    ImageDataset,
)

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



def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def bundled_bytes(name: str) -> bytes:
    return (MNIST_ASSETS / name).read_bytes()


def save(path: Path, arr: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


def coded(n: int) -> ImageDataset:
    """n tiny images, image i filled with value i / n (so each sample names its index)."""
    x = (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return ImageDataset(x, torch.arange(n), name="coded")


def ids(batch: torch.Tensor, n: int) -> list[int]:
    return torch.round(batch[:, 0, 0, 0] * n).long().tolist()


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
