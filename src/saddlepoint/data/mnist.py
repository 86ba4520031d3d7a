"""The MNIST datasets: ``mnist`` (idx files under ``data.root``), ``mnist-t10k`` (bundled with the package)
and ``stacked-mnist`` (three digits as the R, G, B channels: 1,000 modes)."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import DATASETS, ImageDataset, apply_limit, convert_images, uint8_to_unit
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx


def read_mnist_pair(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str] | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read and cross-check an MNIST image file (N×H×W uint8) and optional label file (N, int64)."""
    images = read_idx(images_path, IMAGES_MAGIC)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected 3 dimensions (N×H×W), header gives {images.ndim}")
    labels = None
    if labels_path is not None:
        lab = read_idx(labels_path, LABELS_MAGIC)
        if lab.ndim != 1:
            raise DataError(f"{labels_path}: expected 1 dimension (N), header gives {lab.ndim}")
        if len(lab) != len(images):
            raise DataError(f"{labels_path}: {len(lab)} labels for {len(images)} images in {images_path}")
        labels = torch.from_numpy(lab.astype(np.int64))
    return torch.from_numpy(images), labels


def load_mnist_t10k() -> tuple[torch.Tensor, torch.Tensor]:
    """The MNIST test set bundled with the package: (images uint8 10000×28×28, labels int64 10000)."""
    folder = importlib.resources.files("saddlepoint") / "assets" / "mnist"
    with (
        importlib.resources.as_file(folder / "t10k-images-idx3-ubyte.gz") as img,
        importlib.resources.as_file(folder / "t10k-labels-idx1-ubyte.gz") as lab,
    ):
        images, labels = read_mnist_pair(img, lab)
    assert labels is not None
    return images, labels


def _find(dirs: list[Path], stem: str, kind: str) -> Path | None:
    # torchvision / original site: "train-images-idx3-ubyte"; some unpackers: "train-images.idx3-ubyte"
    tag = "idx3" if kind == "images" else "idx1"
    for d in dirs:
        for name in (f"{stem}-{kind}-{tag}-ubyte", f"{stem}-{kind}.{tag}-ubyte"):
            for suffix in ("", ".gz"):
                p = d / (name + suffix)
                if p.is_file():
                    return p
    return None


def find_mnist(root: str | None, key: str = "data.root") -> tuple[Path, Path | None]:
    """Locate MNIST idx files under ``root`` (torchvision layout).

    Looks in ``root``, ``root/MNIST/raw`` and ``root/raw`` for ``train-images-idx3-ubyte[.gz]``, else
    ``t10k-images-idx3-ubyte[.gz]``: the 60,000 training images are used when present, otherwise the
    10,000 test images. Labels come from the matching ``*-labels-idx1-ubyte[.gz]`` beside them, if present.
    """
    if not root:
        raise DataError(f"{key}: not set; MNIST needs the directory holding the idx files")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"{key}: directory {base} does not exist")
    dirs = [base, base / "MNIST" / "raw", base / "raw"]
    for stem in ("train", "t10k"):
        images = _find(dirs, stem, "images")
        if images is not None:
            return images, _find([images.parent], stem, "labels")
    raise DataError(
        f"{key}: no MNIST idx files in {base} (looked for train-images-idx3-ubyte[.gz] or "
        "t10k-images-idx3-ubyte[.gz] there and in MNIST/raw/)"
    )


def _mnist_dataset(
    images: torch.Tensor, labels: torch.Tensor | None, name: str,
    resolution: int | None, channels: int | None, limit: int | None,
) -> ImageDataset:
    n = apply_limit(len(images), limit)
    x = uint8_to_unit(images[:n].unsqueeze(1))
    x = convert_images(x, resolution, channels, where=name)
    return ImageDataset(x, None if labels is None else labels[:n], name=name)


@DATASETS.register("mnist")
def build_mnist(
    *, root: str | None = None, resolution: int | None = None, channels: int | None = None,
    limit: int | None = None,
) -> ImageDataset:
    """MNIST from idx files under ``data.root``: train split if present, else t10k (:func:`find_mnist`)."""
    images_path, labels_path = find_mnist(root)
    images, labels = read_mnist_pair(images_path, labels_path)
    return _mnist_dataset(images, labels, "mnist", resolution, channels, limit)


@DATASETS.register("mnist-t10k")
def build_mnist_t10k(
    *, root: str | None = None, resolution: int | None = None, channels: int | None = None,
    limit: int | None = None,
) -> ImageDataset:
    """The bundled MNIST test set (10,000 digits); ``root`` is ignored."""
    images, labels = load_mnist_t10k()
    return _mnist_dataset(images, labels, "mnist-t10k", resolution, channels, limit)


STACKED_SEED = 0


@DATASETS.register("stacked-mnist")
def build_stacked_mnist(
    *, root: str | None = None, resolution: int | None = None, channels: int | None = None,
    limit: int | None = None,
) -> ImageDataset:
    """Stacked MNIST (1,000 modes, see REFERENCES.md): three MNIST digits as the R, G, B channels.

    Source digits: MNIST under ``data.root`` if given, else the bundled t10k set. The stacked set has as
    many images as the source; channel c of image i is source digit ``perm_c[i]`` for three independent
    permutations drawn from a fixed seed (0), so the data set is the same on every run. Label =
    100·d_R + 10·d_G + d_B (0..999).
    """
    if channels not in (None, 3):
        raise DataError(f"stacked-mnist: images have 3 channels, the model asks for {channels}")
    if root:
        images, labels = read_mnist_pair(*find_mnist(root))
    else:
        images, labels = load_mnist_t10k()
    if labels is None:
        raise DataError("data.root: stacked-mnist needs the MNIST label file beside the images")
    g = torch.Generator().manual_seed(STACKED_SEED)
    perms = torch.stack([torch.randperm(len(images), generator=g) for _ in range(3)], dim=1)
    n = apply_limit(len(images), limit)
    perms = perms[:n]
    stacked = images[perms]  # n×3×H×W uint8
    lab = labels[perms]
    x = convert_images(uint8_to_unit(stacked), resolution, 3, where="stacked-mnist")
    return ImageDataset(x, lab[:, 0] * 100 + lab[:, 1] * 10 + lab[:, 2], name="stacked-mnist")
