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


# ---------------------------------------------------------------------------------- curves over training
#: ``groups`` below map a label (one configuration) to its runs, each run a list of metrics.jsonl records


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, path: Path | None) -> Path | bytes:
    """Save ``fig`` as PNG to ``path`` (returned) or, when ``path`` is None, return the PNG bytes."""
    import io

    plt = _pyplot()
    try:
        if path is None:
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            return buf.getvalue()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        return path
    finally:
        plt.close(fig)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metric_band(runs, metric: str) -> dict[str, np.ndarray]:
    """Mean and standard error over runs of ``metric`` at each logged step.

    ``runs``: one list of records per run (seeds of one configuration). Returns arrays ``step``, ``time``
    (mean wall-clock at that step), ``mean``, ``se`` (0 where one run has the step) and ``n``.
    """
    per_run: list[dict[int, tuple[float | None, float]]] = []
    for records in runs:
        points: dict[int, tuple[float | None, float]] = {}
        for rec in records:
            if "event" in rec or not isinstance(rec.get("step"), int):
                continue
            value = _number(rec.get(metric))
            if value is not None:
                points[rec["step"]] = (_number(rec.get("time")), value)
        per_run.append(points)
    steps = sorted(set().union(*per_run)) if per_run else []
    out: dict[str, list[float]] = {"step": [], "time": [], "mean": [], "se": [], "n": []}
    for step in steps:
        vals = np.array([p[step][1] for p in per_run if step in p])
        times = [p[step][0] for p in per_run if step in p and p[step][0] is not None]
        out["step"].append(step)
        out["time"].append(float(np.mean(times)) if times else float("nan"))
        out["mean"].append(float(vals.mean()))
        out["se"].append(float(vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else 0.0)
        out["n"].append(len(vals))
    return {key: np.asarray(value, dtype=float) for key, value in out.items()}


def _draw_band(ax, band: dict[str, np.ndarray], x: str, label: str, color) -> bool:
    if not len(band["step"]):
        return False
    xs = band[x]
    keep = np.isfinite(xs)
    xs, mean, se = xs[keep], band["mean"][keep], band["se"][keep]
    if not len(xs):
        return False
    style = {"marker": "o", "markersize": 3} if len(xs) < 12 else {}
    ax.plot(xs, mean, color=color, label=label, linewidth=1.4, **style)
    if np.any(se > 0):
        ax.fill_between(xs, mean - se, mean + se, color=color, alpha=0.2, linewidth=0)
    return True


def _colors(n: int) -> list:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _short(label: str, width: int = 60) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def plot_metric_curves(groups, metrics, path: Path | None = None, title: str | None = None) -> Path | bytes:
    """Each metric (a name or a list of names, one row each) against step (left) and wall-clock seconds
    (right): one line per configuration, the band ± one standard error over its seeds."""
    plt = _pyplot()
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    fig, axes = plt.subplots(len(metrics), 2, figsize=(11, 3.4 * len(metrics) + 0.6), dpi=100, squeeze=False)
    colors = _colors(len(groups))
    for i, (row, metric) in enumerate(zip(axes, metrics)):
        drawn = False
        for (label, runs), color in zip(groups.items(), colors):
            band = metric_band(runs, metric)
            drawn |= _draw_band(row[0], band, "step", _short(label), color)
            _draw_band(row[1], band, "time", _short(label), color)
        for ax, xlabel in zip(row, ("step", "wall-clock (s)")):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
        if drawn and i == 0:
            row[1].legend(fontsize=7, loc="best")
    fig.suptitle(title or "band: ± standard error over seeds", fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


PLAYER_CURVES = (("loss_g", "generator loss"), ("loss_d", "discriminator loss"),
                 ("grad_norm_g", "generator gradient norm"), ("grad_norm_d", "discriminator gradient norm"))


def plot_player_curves(groups, path: Path | None = None, title: str | None = None) -> Path | bytes:
    """Per-player losses and gradient norms against step (2×2), bands over seeds."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), dpi=100)
    colors = _colors(len(groups))
    for ax, (metric, name) in zip(axes.flat, PLAYER_CURVES):
        lows, highs = [], []
        for (label, runs), color in zip(groups.items(), colors):
            band = metric_band(runs, metric)
            _draw_band(ax, band, "step", _short(label), color)
            if len(band["mean"]):
                lows.append(float(np.min(band["mean"] - band["se"])))
                highs.append(float(np.max(band["mean"] + band["se"])))
        if metric.startswith("grad_norm") and lows and min(lows) > 0 and max(highs) / min(lows) > 30:
            ax.set_yscale("log")  # gradient norms that span orders of magnitude (e.g. before a divergence)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if axes[0, 0].has_data():
        axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(title or "players (band: ± standard error over seeds)", fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def plot_gradient_health(records, path: Path | None = None, title: str | None = None) -> Path | bytes:
    """Per-layer gradient norms of each player against step, from the records' ``grad_layers``
    (:mod:`saddlepoint.training.health`): the band from the smallest to the largest layer, the median, and the
    first and last layers; log scale; the steps of gradient-health warnings marked."""
    plt = _pyplot()
    players = list(dict.fromkeys(p for r in records for p in (r.get("grad_layers") or {})))
    fig, axes = plt.subplots(1, max(1, len(players)), figsize=(5.5 * max(1, len(players)), 3.8), dpi=100,
                             squeeze=False)
    warned = [r["step"] for r in records if r.get("warning") and "step" in r]
    for ax, player in zip(axes.flat, players):
        rows = [(r["step"], r["grad_layers"][player]) for r in records if player in (r.get("grad_layers") or {})]
        steps = np.array([s for s, _ in rows], dtype=float)
        series = {k: np.array([_number(v.get(k)) or np.nan for _, v in rows], dtype=float)
                  for k in ("min", "median", "max", "first", "last")}
        ax.fill_between(steps, series["min"], series["max"], color="#1f77b4", alpha=0.2, label="min–max over layers")
        ax.plot(steps, series["median"], color="#1f77b4", lw=1.5, label="median layer")
        ax.plot(steps, series["first"], color="#2ca02c", lw=1, ls="--", label="first layer")
        ax.plot(steps, series["last"], color="#d62728", lw=1, ls=":", label="last layer")
        for step in warned:
            ax.axvline(step, color="#ff7f0e", lw=0.8, alpha=0.7)
        positive = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in series.values()])
        if positive.size:
            ax.set_yscale("log")
        ax.set_title(f"{player}: gradient norm per layer", fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title or "gradient health (orange: warnings)", fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def plot_sample_panels(panels, path: Path | None = None, ncols: int = 4, title: str | None = None,
                       panel_inches: float = 3.4) -> Path | bytes:
    """Sample pictures side by side: ``panels`` is a list of ``(caption, image path or None)``.

    Used for 2-D final samples (the scatter plots with the mode centres that the loop writes) and for
    image sample grids; a missing picture (a run that diverged or failed) is drawn as a grey panel.
    """
    plt = _pyplot()
    panels = list(panels)
    ncols = max(1, min(ncols, len(panels) or 1))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_inches * ncols, (panel_inches + 0.4) * nrows), dpi=100,
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (caption, image) in zip(axes.flat, panels):
        if image is not None and Path(image).is_file():
            with Image.open(image) as img:
                ax.imshow(np.asarray(img.convert("RGB")), interpolation="lanczos")
        else:
            ax.set_facecolor("#eeeeee")
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", fontsize=9, color="#777777",
                    transform=ax.transAxes)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(_wrap(caption), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _finish(fig, path)


def _wrap(text: str, width: int = 42) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_long_words=True)[:4])
