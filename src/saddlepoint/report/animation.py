"""An animated GIF of a 2-D generator's samples over training (mode hopping vs convergence).

The run directory keeps one :class:`TrainingAnimation` while a 2-D run trains: the loop asks
:meth:`~TrainingAnimation.due` after each step, hands the generator's samples (the same latent codes every
time, so points can be followed) to :meth:`~TrainingAnimation.add`, and :meth:`~TrainingAnimation.save`
runs at the end. Frames are drawn with Pillow straight into a fixed 8-colour palette (no matplotlib, one
byte per pixel); past ``max_frames`` every other frame is dropped and the interval doubled, so memory stays
bounded however long the run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageSequence

# palette indices
WHITE, BLACK, GREY, BLUE, RED, LIGHT = 0, 1, 2, 3, 4, 5
PALETTE = [255, 255, 255, 0, 0, 0, 150, 150, 150, 31, 119, 180, 214, 39, 40, 235, 235, 235] + [0] * (256 - 6) * 3


class TrainingAnimation:
    """Collect frames of 2-D samples and write them as a looping GIF.

    ``centers`` (K×2, optional) are marked with red crosses and fix the view; without them the view is
    fitted to the first frame. ``every``: add a frame every that many steps (see :meth:`for_steps`).
    With ``resume=True`` the frames of an existing GIF at ``path`` are kept and new ones appended.
    """

    def __init__(self, path: str | Path, centers=None, every: int = 1, size: int = 360, max_frames: int = 200,
                 frame_ms: int = 80, resume: bool = True) -> None:
        self.path = Path(path)
        self.centers = None if centers is None else _numpy(centers)
        self.every = max(1, int(every))
        self.size = int(size)
        self.max_frames = max(2, int(max_frames))
        self.frame_ms = int(frame_ms)
        self.frames: list[Image.Image] = []
        self.span: float | None = None
        if self.centers is not None and len(self.centers):
            self.span = float(np.abs(self.centers).max()) * 1.5 + 0.5
        if resume and self.path.is_file():
            try:
                with Image.open(self.path) as gif:
                    self.frames = [frame.copy().convert("P") for frame in ImageSequence.Iterator(gif)]
            except OSError:
                self.frames = []

    @classmethod
    def for_steps(cls, path: str | Path, total_steps: int, centers=None, frames: int = 100,
                  **kwargs) -> TrainingAnimation:
        """About ``frames`` frames over ``total_steps`` steps."""
        return cls(path, centers, every=max(1, int(total_steps) // max(1, frames)), **kwargs)

    def due(self, step: int) -> bool:
        """Whether a frame should be added after ``step`` (step 0 is the initial generator)."""
        return step % self.every == 0

    def add(self, points, step: int, title: str | None = None) -> None:
        """Draw one frame from an N×2 array or tensor of generated points."""
        pts = _numpy(points).reshape(-1, 2)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if self.span is None:
            extent = float(np.quantile(np.abs(pts), 0.99)) if len(pts) else 1.0
            self.span = max(extent, 1e-3) * 1.3
        self.frames.append(self._draw(pts, title if title is not None else f"step {step}"))
        if len(self.frames) > self.max_frames:
            self.frames = self.frames[::2]
            self.every *= 2

    def _draw(self, pts: np.ndarray, title: str) -> Image.Image:
        size, span = self.size, float(self.span or 1.0)
        img = Image.new("P", (size, size), WHITE)
        img.putpalette(PALETTE)
        draw = ImageDraw.Draw(img)
        margin, top = 8, 22
        box = size - 2 * margin - top

        def to_px(xy: np.ndarray) -> np.ndarray:
            u = margin + (xy[:, 0] + span) / (2 * span) * box
            v = top + margin + (span - xy[:, 1]) / (2 * span) * box
            return np.stack([u, v], axis=1)

        draw.rectangle([margin, top + margin, margin + box, top + margin + box], outline=GREY)
        if self.centers is not None:  # under the samples, so that converged points stay visible
            for u, v in to_px(self.centers).round().astype(int):
                draw.line([u - 6, v - 6, u + 6, v + 6], fill=RED, width=1)
                draw.line([u - 6, v + 6, u + 6, v - 6], fill=RED, width=1)
        inside = np.abs(pts).max(axis=1) <= span if len(pts) else np.zeros(0, bool)
        for u, v in to_px(pts[inside]).round().astype(int):
            draw.rectangle([u - 1, v - 1, u, v], fill=BLUE)
        outside = int((~inside).sum())
        text = title + (f" · {outside} outside the view" if outside else "")
        draw.text((margin, 4), text, fill=BLACK)
        return img

    def save(self) -> Path | None:
        """Write the GIF (the last frame held for a second); returns its path, or None without frames."""
        if not self.frames:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        durations = [self.frame_ms] * (len(self.frames) - 1) + [1000]
        tmp = self.path.with_name(self.path.stem + ".tmp.gif")
        self.frames[0].save(tmp, save_all=True, append_images=self.frames[1:], duration=durations, loop=0,
                            optimize=False, disposal=1)
        tmp.replace(self.path)
        return self.path


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    return arr if arr.ndim == 2 else arr.reshape(-1, 2)


def frame_count(path: str | Path) -> int:
    """Number of frames in a GIF (for tests and reports)."""
    with Image.open(path) as gif:
        return sum(1 for _ in ImageSequence.Iterator(gif))


__all__ = ["TrainingAnimation", "frame_count"]
