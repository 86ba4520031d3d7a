"""Fixtures of the metric tests: the bundled MNIST t10k images, evaluation settings, small digit datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from saddlepoint.config import EvalConfig
from saddlepoint.data import load_mnist_t10k
from saddlepoint.data.base import ImageDataset


@pytest.fixture(scope="module")
def t10k() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist_t10k()
    return images.unsqueeze(1).float().div(127.5).sub(1.0), labels


@pytest.fixture
def cfg(tmp_path: Path) -> EvalConfig:
    return EvalConfig(cache_dir=str(tmp_path / "cache"), kid_subsets=10, kid_subset_size=200)


@pytest.fixture
def digits() -> Callable[..., ImageDataset]:
    """``digits(x, n, name)``: an image dataset of the first ``n`` images of ``x``."""

    def make(x: torch.Tensor, n: int, name: str = "mnist-t10k") -> ImageDataset:
        return ImageDataset(x[:n].clone(), name=name)

    return make
