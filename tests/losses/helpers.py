"""Hand computations shared by the loss and penalty tests, written out independently of torch."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def softplus(x: float) -> float:
    """log(1 + e^x), written out independently of torch."""
    return math.log(1 + math.exp(x))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def t(values: list[float], grad: bool = False) -> Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)
