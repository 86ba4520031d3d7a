"""The shipped MNIST classifier: size and held-out accuracy as stated."""

from __future__ import annotations

from importlib import resources

import pytest
import torch

from saddlepoint.data import load_mnist_t10k
from saddlepoint.models.classifier import MNIST_HELDOUT_ACCURACY, MNIST_HELDOUT_SPLIT, load_mnist_classifier


@pytest.fixture(scope="module")
def t10k() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist_t10k()
    return images.unsqueeze(1).float().div(127.5).sub(1.0), labels


def test_shipped_classifier_reaches_stated_accuracy(t10k) -> None:
    x, y = t10k
    a, b = MNIST_HELDOUT_SPLIT
    net = load_mnist_classifier()
    assert sum(p.numel() for p in net.parameters()) < 150_000
    assert len(resources.files("saddlepoint").joinpath("assets", "mnist_classifier.pt").read_bytes()) < 500_000
    with torch.no_grad():
        pred = torch.cat([net(chunk).argmax(1) for chunk in x[a:b].split(1000)])
    acc = float((pred == y[a:b]).double().mean())
    assert acc >= 0.985
    assert acc == pytest.approx(MNIST_HELDOUT_ACCURACY, abs=1e-3)
