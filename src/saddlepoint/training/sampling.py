"""Drawing from a generator: the evaluation noise, batched generation in eval mode, sample pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..report.plots import save_image_grid, save_scatter

#: the evaluation noise is seeded ``seed + EVAL_SEED_OFFSET``: the same for every evaluation and world size
EVAL_SEED_OFFSET = 10_000


def eval_noise(n: int, z_dim: int, seed: int) -> Tensor:
    """The noise of the ``n`` evaluation samples of a run seeded ``seed``."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET))


@torch.no_grad()
def generate(G: nn.Module, z: Tensor, device: torch.device | str = "cpu") -> Tensor:
    """``G(z)`` in eval mode (batches of 1024, results on the CPU); G's mode is restored afterwards."""
    was_training = G.training
    G.eval()
    out = torch.cat([G(chunk.to(device)).cpu() for chunk in z.split(1024)])
    G.train(was_training)
    return out


def title(step: int, metrics: dict[str, Any]) -> str:
    """The title of a 2-D sample plot: the step, and the mode statistics when known."""
    if metrics.get("modes") is None:
        return f"step {step}"
    return f"step {step} · modes {metrics['modes']}, {100 * metrics['hq']:.1f}% high quality"


def render(samples: Tensor, path: Path, dataset: Any, title: str = "", nrow: int | None = None) -> Path:
    """2-D samples as a scatter plot over the dataset's centres; images as a grid."""
    if getattr(dataset, "kind", "") == "points":
        return save_scatter(samples, path, getattr(dataset, "centers", None), title)
    return save_image_grid(samples, path, nrow=nrow)
