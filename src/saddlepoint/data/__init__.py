"""Datasets: 2-D mixtures (PacGAN protocol), MNIST variants, scikit-learn digits, image folders, npz.

``build_dataset(name, root=..., resolution=..., channels=..., limit=...)`` returns a :class:`Dataset`
whose ``sample(n, generator)`` gives float32 batches (images in [-1, 1]); see ``base.py``.
"""

from __future__ import annotations

from . import images as _images  # noqa: F401  (registers folder, npz, digits)
from . import toy as _toy  # noqa: F401  (registers ring, grid)
from .base import DATASETS, Dataset, ImageDataset, PointDataset, build_dataset, convert_images
from .idx import parse_idx, read_idx
from .mnist import load_mnist_t10k  # (registers mnist, mnist-t10k, stacked-mnist)
from .toy import grid_centers, ring_centers

__all__ = [
    "DATASETS",
    "Dataset",
    "ImageDataset",
    "PointDataset",
    "build_dataset",
    "convert_images",
    "grid_centers",
    "load_mnist_t10k",
    "parse_idx",
    "read_idx",
    "ring_centers",
]
