"""Plots of runs: metric bands over seeds and PNG figures."""

import io
import math

import numpy as np
import pytest
from PIL import Image

from saddlepoint.report import html as H
from saddlepoint.report.plots import metric_band, plot_metric_curves, plot_player_curves, plot_sample_panels


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
