"""The figure both mixture reproductions draw: rows of methods × columns of iterations, samples over the modes."""

from __future__ import annotations

from pathlib import Path

import torch


def snapshot_figure(rows: list[dict], names: list[str], snapshots: list[int], centers: torch.Tensor, lim: float,
                    path: Path, seed: int, title: str) -> None:
    """Seed ``seed``'s samples of each method in ``names`` at each iteration of ``snapshots`` (clamped to ±lim),
    the modes as red crosses, each panel titled with its modes and high-quality share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in names if any(r["method"] == m for r in rows)]
    c = centers.numpy()
    fig, axes = plt.subplots(len(names), len(snapshots), figsize=(2.3 * len(snapshots), 2.4 * len(names)),
                             squeeze=False)
    for i, method in enumerate(names):
        r = next(r for r in rows if r["method"] == method and r["seed"] == seed)
        for j, step in enumerate(snapshots):
            ax = axes[i][j]
            x = torch.tensor(r["samples"][step])
            st = next(t for t in r["track"] if t["step"] == step)
            ax.scatter(c[:, 0], c[:, 1], s=30, c="red", marker="x", linewidths=1)
            ax.scatter(x[:, 0].clamp(-lim, lim), x[:, 1].clamp(-lim, lim), s=2, alpha=0.4)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{step:,}: {st['modes']} modes, {100 * st['hq']:.0f}% hq", fontsize=8)
            if j == 0:
                ax.set_ylabel(method, fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
