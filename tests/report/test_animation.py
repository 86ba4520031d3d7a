"""The training GIF of 2-D runs."""

import numpy as np
import torch
from PIL import Image

from saddlepoint.report.animation import TrainingAnimation, frame_count


def test_training_animation(tmp_path):
    centers = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    path = tmp_path / "samples" / "training.gif"
    anim = TrainingAnimation.for_steps(path, total_steps=100, centers=centers, frames=10, max_frames=6)
    assert anim.every == 10
    steps = [s for s in range(0, 101) if anim.due(s)]
    assert steps == list(range(0, 101, 10))
    for s in steps:
        anim.add(torch.randn(300, 2) * 0.1 + centers[s // 10 % 2], s)
    assert len(anim.frames) <= 6 and anim.every > 10  # decimated, interval doubled
    assert anim.save() == path
    n = frame_count(path)
    assert n == len(anim.frames)
    with Image.open(path) as gif:
        assert gif.size == (360, 360) and gif.info.get("loop") == 0
        gif.seek(n - 1)
        frame = np.asarray(gif.convert("RGB"))
    assert ((frame[..., 2] > 150) & (frame[..., 0] < 80)).sum() > 50  # blue sample points drawn
    # resuming appends to the frames already written
    more = TrainingAnimation(path, centers=centers)
    more.add(np.zeros((10, 2)), 200)
    more.add(np.full((10, 2), np.nan), 210)  # non-finite points are skipped, not fatal
    more.save()
    assert frame_count(path) == n + 2
    assert TrainingAnimation(tmp_path / "none.gif").save() is None
