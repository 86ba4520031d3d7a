"""The MNIST classifier shipped with the package (``assets/mnist_classifier.pt``).

Trained by ``scripts/train_mnist_classifier.py`` on the first 8,000 digits of MNIST t10k
(:data:`MNIST_TRAIN_SPLIT`) and tested on the last 2,000 (:data:`MNIST_HELDOUT_SPLIT`,
:data:`MNIST_HELDOUT_ACCURACY`). The metrics use it as a feature network (``eval.features: mnist``) and
as the digit classifier of the Stacked-MNIST mode count (see :mod:`saddlepoint.metrics.extractors`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import io

import torch
from torch import Tensor, nn

from ..errors import UserError

#: accuracy of the shipped classifier on t10k[8000:10000] (checked by tests/models/test_classifier.py)
MNIST_HELDOUT_ACCURACY = 0.9940  # 1,988 of 2,000
#: the classifier's training split (t10k indices) and held-out split
MNIST_TRAIN_SPLIT = (0, 8000)
MNIST_HELDOUT_SPLIT = (8000, 10000)
MNIST_ASSET = "mnist_classifier.pt"


class MnistNet(nn.Module):
    """A small CNN for 28×28 grey digits in [-1, 1]: three conv–BN–ReLU–maxpool blocks (16, 32, 64
    channels, 3×3), a 128-unit hidden layer (the feature layer) and 10 logits."""

    feature_dim = 128

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)
            )

        self.body = nn.Sequential(block(1, 16), block(16, 32), block(32, 64), nn.Flatten())  # 64×3×3
        self.hidden = nn.Sequential(nn.Linear(576, self.feature_dim), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, 10)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer activations (N×128)."""
        return self.hidden(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N×10)."""
        return self.head(self.dropout(self.features(x)))


@functools.lru_cache(maxsize=1)
def shipped_classifier() -> tuple[MnistNet, str]:
    """The shipped network (eval mode, frozen) and a digest of its file, loaded once per process from
    package data with ``weights_only=True`` (``shipped_classifier.cache_clear()`` forces a reload)."""
    res = importlib.resources.files("saddlepoint") / "assets" / MNIST_ASSET
    try:
        data = res.read_bytes()
    except (FileNotFoundError, OSError) as exc:
        raise UserError(f"the shipped MNIST classifier {MNIST_ASSET} is missing from the package ({exc})") from None
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    with torch.random.fork_rng(devices=[]):  # the throw-away initialisation must not touch the global RNG
        net = MnistNet()
    net.load_state_dict(state)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, hashlib.sha256(data).hexdigest()[:16]


def load_mnist_classifier() -> MnistNet:
    """The shipped classifier in eval mode (loaded once, see :func:`shipped_classifier`)."""
    return shipped_classifier()[0]


def mnist_classifier_digest() -> str:
    """First 16 hex digits of the SHA-256 of the shipped weights file (part of cache keys)."""
    return shipped_classifier()[1]


__all__ = [
    "MNIST_ASSET",
    "MNIST_HELDOUT_ACCURACY",
    "MNIST_HELDOUT_SPLIT",
    "MNIST_TRAIN_SPLIT",
    "MnistNet",
    "load_mnist_classifier",
    "mnist_classifier_digest",
    "shipped_classifier",
]
