"""Compare: tables of mean ± standard error, plots and a self-contained report.html rendered by a real browser."""

import base64
import csv
import io
import math
import os
import shutil
import statistics
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from saddlepoint.experiments import compare

from .helpers import read_jsonl


# ---------------------------------------------------------------------------------- compare
class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.images, self.links = [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs)
        elif tag in ("link", "script") or (tag == "a" and "href" in attrs):
            self.links.append(attrs)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(self._cell)
            self._cell = None


def expected_stats(rows, metric):
    values = [r[metric] for r in rows]
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values))
    return mean, se


def test_compare_tables_report_and_browser(ring_sweep, tmp_path):
    out, _ = ring_sweep
    cmp_dir = tmp_path / "compare"
    comparison = compare([out], cmp_dir)
    rows = read_jsonl(out / "results.jsonl")
    with open(cmp_dir / "table.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 4 and comparison.varying == ["optim.name", "loss.name"]
    assert [m for m, _ in comparison.primary] == ["modes", "kl"]
    md = (cmp_dir / "table.md").read_text()
    for line in table:
        group = [r for r in rows if r["optim.name"] == line["optim.name"] and r["loss.name"] == line["loss.name"]]
        assert len(group) == 2 and line["completed"] == "2"
        for metric in ("modes", "hq", "kl", "wall_time", "grad_evals", "steps"):
            mean, se = expected_stats(group, metric)
            assert float(line[f"{metric}_mean"]) == pytest.approx(mean, rel=1e-12, abs=1e-15)
            assert float(line[f"{metric}_se"]) == pytest.approx(se, rel=1e-12, abs=1e-15)
        mean, se = expected_stats(group, "wall_time")
        assert f"{mean:.4g} ± {se:.2g}" in md
    # sorted: most modes first, then lowest KL
    keys = [(-float(line["modes_mean"]), float(line["kl_mean"])) for line in table]
    assert keys == sorted(keys)
    assert [int(line["rank"]) for line in table] == [1, 2, 3, 4]

    html = (cmp_dir / "report.html").read_text()
    parsed = Collector()
    parsed.feed(html)
    assert not parsed.links  # self-contained: no external resources
    assert len(parsed.tables) == 3  # results, runs, per-configuration values
    results_table = parsed.tables[0]
    assert results_table[0][:3] == ["#", "configuration", "runs"] and len(results_table) == 1 + 4
    assert [row[1] for row in results_table[1:]] == [line["configuration"] for line in table]
    assert len(parsed.tables[1]) == 1 + 8
    assert len(parsed.images) == 3  # samples, metrics, players
    for img in parsed.images:
        assert img["src"].startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))) as png:
            assert png.format == "PNG" and png.width > 300
    for name in ("samples.png", "metrics.png", "players.png"):
        assert (cmp_dir / "plots" / name).is_file()

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (apt-get install -y chromium)")
        pytest.skip("chromium not installed")
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
           (cmp_dir / "report.html").resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1200, 2000)
        px = np.asarray(img.convert("RGB")).astype(int)
    non_white = (px.min(axis=2) < 235).mean()
    assert non_white > 0.02, non_white  # not blank
    # matplotlib's blue (generated samples, curves) and red (mode centres) come only from the embedded images
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    blue = ((abs(r - 31) < 40) & (abs(g - 119) < 40) & (abs(b - 180) < 40)).sum()
    red = ((r > 180) & (g < 90) & (b < 90)).sum()
    assert blue > 500 and red > 50, (blue, red)


def test_compare_accepts_run_dirs_and_folders(ring_sweep, tmp_path):
    out, _ = ring_sweep
    runs = sorted((out / "runs").iterdir())
    comparison = compare([runs[0], runs[1], out / "runs"], tmp_path / "c", plots=False)
    assert len(comparison.runs) == 8  # duplicates dropped
    assert len(comparison.groups) == 4
