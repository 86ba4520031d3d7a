"""2-D Gaussian mixtures of the PacGAN protocol (Lin et al. 2018; see REFERENCES.md).

``ring``: 8 modes at (cos 2πk/8, sin 2πk/8), k = 0..7 (radius 1, no repeated endpoint), σ = 0.01.
``grid``: 25 modes at {-4, -2, 0, 2, 4}², σ = 0.05. Uniform weights; samples are drawn on the fly.
"""

from __future__ import annotations

import math

import torch

from .base import DATASETS, PointDataset

RING_MODES = 8
RING_RADIUS = 1.0
RING_STD = 0.01
GRID_VALUES = (-4.0, -2.0, 0.0, 2.0, 4.0)
GRID_STD = 0.05


def ring_centers(k: int = RING_MODES, radius: float = RING_RADIUS) -> torch.Tensor:
    """``k`` centres evenly spaced on a circle: angle 2πj/k, j = 0..k-1 (float64, k×2)."""
    angles = [2.0 * math.pi * j / k for j in range(k)]
    return torch.tensor([[radius * math.cos(a), radius * math.sin(a)] for a in angles], dtype=torch.float64)


def grid_centers(values: tuple[float, ...] = GRID_VALUES) -> torch.Tensor:
    """All points of ``values``² in row-major order (x outer, y inner), float64, len(values)²×2."""
    return torch.tensor([[x, y] for x in values for y in values], dtype=torch.float64)


@DATASETS.register("ring")
def build_ring(**_: object) -> PointDataset:
    """Ring of 8 Gaussians, radius 1, σ 0.01 (PacGAN protocol). Image options are ignored."""
    return PointDataset(ring_centers(), RING_STD, name="ring")


@DATASETS.register("grid")
def build_grid(**_: object) -> PointDataset:
    """5×5 grid of Gaussians at {-4,-2,0,2,4}², σ 0.05 (PacGAN protocol). Image options are ignored."""
    return PointDataset(grid_centers(), GRID_STD, name="grid")
