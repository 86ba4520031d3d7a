"""The self-contained report.html of one run and the HTML helpers."""

import base64
import io
import json
from html.parser import HTMLParser

import pytest
import torch
from PIL import Image

from saddlepoint.report import html as H
from saddlepoint.report.animation import TrainingAnimation
from saddlepoint.training import train

from .helpers import RING


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def of(self, name):
        return [attrs for tag, attrs in self.tags if tag == name]


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
    assert kinds == ["data:image/gif"] + ["data:image/png"] * 4  # samples, GIF, players, gradient health, metrics
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
