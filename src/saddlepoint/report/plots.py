"""Pictures of samples: image grids (PNG) and 2-D scatter plots with the mode centres."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """N×C×H×W in [-1, 1] → an H'×W'×C uint8 grid (C = 1 squeezed to grey)."""
    images = images.detach().float().cpu().clamp(-1, 1)
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol = int(math.ceil(n / nrow))
    grid = np.full((ncol * (h + padding) + padding, nrow * (w + padding) + padding, c), 255, np.uint8)
    pixels = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for k in range(n):
        r, q = divmod(k, nrow)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        grid[y : y + h, x : x + w] = pixels[k]
    return grid[..., 0] if c == 1 else grid


def save_image_grid(images: torch.Tensor, path: Path, nrow: int | None = None, scale: int = 2) -> Path:
    """Write a PNG grid of ``images``, upscaled ``scale``× (nearest) so small digits stay readable."""
    grid = image_grid(images, nrow)
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def save_scatter(
    points: torch.Tensor,
    path: Path,
    centers: torch.Tensor | None = None,
    title: str = "",
    real: torch.Tensor | None = None,
) -> Path:
    """2-D samples as a scatter plot, with the mode centres marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = points.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    if real is not None:
        r = real.detach().float().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=2, c="#bbbbbb", alpha=0.5, label="data")
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="#1f77b4", alpha=0.6, label="generated")
    if centers is not None:
        ctr = centers.detach().float().cpu().numpy()
        ax.scatter(ctr[:, 0], ctr[:, 1], s=40, marker="x", c="#d62728", label="modes")
        span = np.abs(ctr).max() * 1.5 + 0.5
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
