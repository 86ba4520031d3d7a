"""Reports of one run: plots with bands over seeds, the self-contained report.html, the training GIF and
TensorBoard event files."""

import base64
import io
import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

from saddlepoint.report import html as H
from saddlepoint.report.animation import TrainingAnimation, frame_count
from saddlepoint.report.plots import metric_band, plot_metric_curves, plot_player_curves, plot_sample_panels
from saddlepoint.train.loop import train

RING = {
    "data": {"name": "ring"},
    "model": {"name": "mlp", "z_dim": 2, "width": 32, "depth": 2},
    "train": {"steps": 20, "batch_size": 64, "ema": 0.0},
    "eval": {"samples": 200, "every": 10},
    "log": {"every": 5, "progress": "none"},
}


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    return train(RING, tmp_path_factory.mktemp("run") / "ring")


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def of(self, name):
        return [attrs for tag, attrs in self.tags if tag == name]


def test_metric_band_mean_and_standard_error():
    runs = [
        [{"step": 1, "time": 0.1, "loss_g": 1.0}, {"step": 2, "time": 0.2, "loss_g": 3.0},
         {"step": 2, "event": "diverged"}],
        [{"step": 1, "time": 0.3, "loss_g": 2.0}, {"step": 2, "time": 0.4, "loss_g": float("nan")},
         {"step": 3, "time": 0.5, "loss_g": 5.0}],
    ]
    band = metric_band(runs, "loss_g")
    assert band["step"].tolist() == [1, 2, 3]
    assert band["mean"].tolist() == [1.5, 3.0, 5.0]
    assert band["se"][0] == pytest.approx(np.std([1.0, 2.0], ddof=1) / math.sqrt(2))
    assert band["se"][1:].tolist() == [0.0, 0.0] and band["n"].tolist() == [2, 1, 1]
    assert band["time"].tolist() == pytest.approx([0.2, 0.2, 0.5])
    assert metric_band(runs, "fid")["step"].size == 0


def test_plots_return_png(ring_run, tmp_path):
    records = H.read_records(ring_run)
    groups = {"a": [records, records], "b": [records]}
    for png in (plot_metric_curves(groups, ["modes", "kl"]), plot_player_curves(groups),
                plot_sample_panels([("a", ring_run / "samples" / "final.png"), ("missing", None)])):
        with Image.open(io.BytesIO(png)) as img:
            assert img.format == "PNG" and img.width > 300
    path = plot_player_curves(groups, tmp_path / "p" / "players.png")
    assert path.is_file()


def test_run_report_is_self_contained(ring_run):
    anim = TrainingAnimation(ring_run / "samples" / "training.gif", centers=torch.randn(8, 2), resume=False)
    anim.add(torch.randn(100, 2), 0)
    anim.add(torch.randn(100, 2), 10)
    anim.save()
    path = H.write_run_report(ring_run)
    assert path == ring_run / "report.html"
    text = path.read_text()
    parser = Tags()
    parser.feed(text)
    assert not parser.of("link") and not parser.of("script")
    assert len(parser.of("table")) == 1
    images = parser.of("img")
    kinds = sorted(img["src"].split(";")[0] for img in images)
    assert kinds == ["data:image/gif"] + ["data:image/png"] * 3  # samples, GIF, players, eval metrics
    for img in images:
        data = base64.b64decode(img["src"].split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.load()
    summary = json.loads((ring_run / "summary.json").read_text())
    assert f"{summary['metrics']['kl']:.4g}" in text and "completed" in text
    assert "batch_size: 64" in text  # the configuration


def test_run_report_of_a_diverged_run(tmp_path):
    from saddlepoint.errors import DivergenceError

    cfg = {**RING, "optim": {"name": "sgd", "lr": 1e30}}
    with pytest.raises(DivergenceError):
        train(cfg, tmp_path / "bad")
    text = H.write_run_report(tmp_path / "bad").read_text()
    assert "diverged" in text and "non-finite" in text


def test_html_helpers_escape():
    out = H.table(["a<b", "n"], [["<script>", 1.23456789], ["x", None]])
    assert "&lt;script&gt;" in out and "<script>" not in out and "1.235" in out
    page = H.page("t & u", [out])
    assert page.startswith("<!DOCTYPE html>") and "t &amp; u" in page
    assert H.data_uri(b"\x89PNG").startswith("data:image/png;base64,")


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


def test_tensorboard_events_next_to_metrics(ring_run):
    pytest.importorskip("tensorboard")
    from saddlepoint.report.tensorboard import TensorBoardLogger, read_scalars

    records = H.read_records(ring_run)
    with TensorBoardLogger(ring_run) as tb:
        for rec in records:
            tb.log(rec)
        tb.log({"step": 3, "event": "diverged", "player": "G"})  # events are not scalars
    assert list(ring_run.glob("events.out.tfevents.*"))
    scalars = read_scalars(ring_run)
    logged = [r for r in records if "loss_g" in r]
    assert [s for s, _ in scalars["loss/G"]] == [r["step"] for r in logged]
    assert [v for _, v in scalars["grad_norm/D"]] == pytest.approx([r["grad_norm_d"] for r in logged], rel=1e-6)
    assert scalars["cost/grad_evals"][-1] == (20, 40.0)
    assert [s for s, _ in scalars["eval/kl"]] == [10, 20]
