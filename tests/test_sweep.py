"""Sweeps (grid × seeds in worker processes, re-runs skip finished runs, failures recorded) and compare
(tables of mean ± standard error, plots, a self-contained report.html rendered by a real browser)."""

import argparse
import base64
import csv
import io
import json
import math
import os
import shutil
import statistics
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from saddlepoint.errors import ConfigError, UserError
from saddlepoint.experiments import available_cores, compare, parse_grid, sweep
from saddlepoint.experiments.cli import add_compare_parser, add_sweep_parser, cmd_compare, cmd_sweep
from saddlepoint.experiments.sweep import plan_workers, run_name, split_values

BASE = {
    "data": {"name": "ring"},
    "model": {"name": "mlp", "z_dim": 2, "width": 32, "depth": 2},
    "train": {"steps": 20, "batch_size": 64, "ema": 0.0},
    "eval": {"samples": 200},
    "log": {"every": 5},
}
GRID = {"optim.name": ["adam", "sgd"], "loss.name": ["ns", "hinge"]}


def recording_runner(config, out):
    """Runs in a worker: notes the worker's torch thread count, dies hard or trains as asked."""
    import torch

    from saddlepoint.train.loop import train

    if config["data"]["name"] == "mnist" and config["optim"]["lr"] > 1:
        os._exit(7)  # a worker killed outright (think: out of memory)
    threads = torch.get_num_threads()
    try:
        return train(config, out)
    finally:
        if Path(out).is_dir():
            (Path(out) / "threads.txt").write_text(str(threads))


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def ring_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "ring"
    result = sweep(BASE, GRID, seeds=2, workers=2, out=out, log=None)
    return out, result


# ---------------------------------------------------------------------------------- sweep
def test_sweep_runs_every_point_and_a_rerun_recomputes_nothing(ring_sweep):
    out, result = ring_sweep
    assert result.executed == 8 and result.skipped == 0
    assert result.counts == {"completed": 8}
    assert result.workers == 2 and result.workers * result.threads <= available_cores()
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 8
    expected = {(o, l, s) for o in GRID["optim.name"] for l in GRID["loss.name"] for s in (0, 1)}
    assert {(r["optim.name"], r["loss.name"], r["seed"]) for r in rows} == expected
    for row in rows:
        run_dir = out / row["dir"]
        assert run_dir.name == f"optim.name={row['optim.name']}__loss.name={row['loss.name']}__seed={row['seed']}"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert row["status"] == summary["status"] == "completed" and row["error"] is None
        assert (row["steps"], row["grad_evals"], row["hvps"]) == (20, 40, 0)
        assert row["wall_time"] == summary["wall_time"] and row["modes"] == summary["metrics"]["modes"]
        assert {"kl", "hq"} <= set(row)
        config = (run_dir / "config.yaml").read_text()
        assert f"seed: {row['seed']}" in config and f"threads: {result.threads}" in config
    with open(out / "results.csv", newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert [r["run"] for r in csv_rows] == [r["run"] for r in rows]
    assert [float(r["kl"]) for r in csv_rows] == [r["kl"] for r in rows]
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["format"] == "saddlepoint-sweep" and manifest["grid"] == GRID and manifest["seeds"] == [0, 1]
    assert [r["name"] for r in manifest["runs"]] == [r["run"] for r in rows]
    assert manifest["runs"][0]["config"]["data"]["name"] == "ring"

    before = snapshot(out / "runs")
    again = sweep(BASE, GRID, seeds=2, workers=2, out=out, log=None)
    assert again.executed == 0 and again.skipped == 8
    assert snapshot(out / "runs") == before  # no run directory file rewritten (mtimes and bytes)
    assert read_jsonl(out / "results.jsonl") == rows

    # an unfinished run (no completed summary) is cleaned and re-run; the others are still skipped
    victim = out / rows[3]["dir"]
    (victim / "summary.json").unlink()
    (victim / "stale.txt").write_text("left over")
    third = sweep(BASE, GRID, seeds=2, workers=2, out=out, log=None)
    assert third.executed == 1 and third.skipped == 7 and third.counts == {"completed": 8}
    assert not (victim / "stale.txt").exists() and (victim / "summary.json").is_file()
    after = snapshot(out / "runs")
    assert {k: v for k, v in after.items() if not k.startswith(victim.name)} == \
        {k: v for k, v in before.items() if not k.startswith(victim.name)}


def test_failures_are_recorded_and_do_not_disturb_other_runs(tmp_path):
    grid = {"data.name": ["ring", "mnist"], "optim.lr": ["1e-3", "1e30"]}
    out = tmp_path / "failing"
    result = sweep(BASE, grid, seeds=1, workers=2, out=out, runner=recording_runner, log=None)
    rows = {(r["data.name"], r["optim.lr"]): r for r in read_jsonl(out / "results.jsonl")}
    assert result.executed == 4
    good = rows[("ring", 1e-3)]
    assert good["status"] == "completed" and good["error"] is None and good["steps"] == 20
    assert isinstance(good["modes"], int) and math.isfinite(good["kl"])
    # the worker's torch thread count is cores // workers
    assert int((out / good["dir"] / "threads.txt").read_text()) == max(1, available_cores() // 2)
    diverged = rows[("ring", 1e30)]
    assert diverged["status"] == "diverged" and "diverged" in diverged["error"] and diverged["steps"] < 20
    raised = rows[("mnist", 1e-3)]  # mnist without data.root: a data error inside the run
    assert raised["status"] == "failed" and "data.root" in raised["error"]
    assert "Traceback" in (out / raised["dir"] / "error.txt").read_text()
    died = rows[("mnist", 1e30)]
    assert died["status"] == "failed" and "worker process died (exit code 7)" in died["error"]
    with open(out / "results.csv", newline="") as fh:
        assert sorted(r["status"] for r in csv.DictReader(fh)) == ["completed", "diverged", "failed", "failed"]

    # a re-run repeats only the failed runs: completed and diverged are final outcomes
    good_summary = (out / good["dir"] / "summary.json").read_bytes()
    again = sweep(BASE, grid, seeds=1, workers=2, out=out, runner=recording_runner, log=None)
    assert again.executed == 2 and again.skipped == 2
    assert (out / good["dir"] / "summary.json").read_bytes() == good_summary

    comparison = compare([out], tmp_path / "cmp", plots=False)
    # (ring runs start from the ring preset, so more keys than the grid's vary between ring and mnist)
    by_values = {(g.values["data.name"], g.values["optim.lr"]): g for g in comparison.groups}
    assert by_values[("ring", 1e30)].count("diverged") == 1
    assert comparison.groups[0] is by_values[("ring", 1e-3)]  # the only one with results
    assert "1 diverged" in comparison.markdown and "1 failed" in comparison.markdown
    report = (tmp_path / "cmp" / "report.html").read_text()
    assert "Runs that did not complete" in report and "worker process died" in report


def test_bad_sweep_input_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="--grid optim.nme=0.5: .*nme"):
        sweep(BASE, {"optim.nme": ["0.5"]}, out=tmp_path / "a", log=None)
    # a combination that no run could take
    with pytest.raises(UserError, match="--grid optim.name=sgd optim.beta1=0.5: .*beta1"):
        sweep(BASE, {"optim.name": ["adam", "sgd"], "optim.beta1": ["0.5"]}, out=tmp_path / "a", log=None)
    with pytest.raises(UserError, match="optim.name.*no-such-optimizer"):
        sweep(BASE, {"optim.name": ["adam", "no-such-optimizer"]}, out=tmp_path / "a", log=None)
    with pytest.raises(UserError, match="loss.name.*vanilla"):
        sweep([BASE, {"loss": {"name": "vanilla"}}], {"optim.name": ["adam"]}, out=tmp_path / "a", log=None)
    with pytest.raises(UserError, match=r"--grid train.steps=ten.*train.steps"):
        sweep(BASE, {"train.steps": ["10", "ten"]}, out=tmp_path / "b", log=None)
    with pytest.raises(UserError, match="--seeds"):
        sweep(BASE, GRID, seeds=0, out=tmp_path / "c", log=None)
    with pytest.raises(UserError, match="--seeds N"):
        sweep(BASE, {"seed": [1, 2]}, out=tmp_path / "d", log=None)
    with pytest.raises(UserError, match="--workers"):
        sweep(BASE, GRID, workers=0, out=tmp_path / "e", log=None)
    with pytest.raises(UserError, match="KEY=V1,V2"):
        parse_grid(["optim.name"])
    with pytest.raises(UserError, match="given twice"):
        parse_grid(["optim.name=adam", "optim.name=sgd"])
    with pytest.raises(UserError, match="empty value"):
        parse_grid(["optim.name=adam,"])
    assert not any((tmp_path / x).exists() for x in "abcde")  # nothing started, nothing written
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(UserError, match="is a run directory"):
        sweep(BASE, GRID, out=run, log=None)


def test_grid_parsing_names_and_worker_plan():
    assert parse_grid(["optim.lr=[1e-4,4e-4],1e-3", "loss.name=ns"]) == {
        "optim.lr": ["[1e-4,4e-4]", "1e-3"], "loss.name": ["ns"]}
    assert split_values("a, b ,[1,2]") == ["a", "b", "[1,2]"]
    assert run_name({"optim.lr": [1e-4, 4e-4], "data.root": "/x y/z"}, 3) == \
        "optim.lr=_0.0001_0.0004___data.root=_x_y_z__seed=3"
    assert len(run_name({"model.name": "m" * 400}, 0)) <= 150
    assert plan_workers(4, 10, cores=2) == (2, 1, "--workers 4 exceeds the 2 available cores; using 2 worker processes")
    assert plan_workers(2, 10, cores=8)[:2] == (2, 4)
    assert plan_workers(3, 10, cores=8)[:2] == (3, 2)  # 3 × 2 ≤ 8
    assert plan_workers(4, 1, cores=8)[:2] == (1, 2)  # one run: one process, threads for 4 workers
    with pytest.raises(ConfigError):
        sweep(BASE, {"optim.scheme": ["sideways"]}, out="/nonexistent/never", log=None)


def test_cli_functions(ring_sweep, tmp_path, capsys):
    out, _ = ring_sweep
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_sweep_parser(sub)
    add_compare_parser(sub)
    # the same sweep through the command: nothing to run
    args = parser.parse_args(["sweep", "--set", "data.name=ring", "--set", "model.name=mlp", "--set", "model.z_dim=2",
                              "--set", "model.width=32",
                              "--set", "model.depth=2", "--set", "train.steps=20",
                              "--set", "train.batch_size=64", "--set", "train.ema=0", "--set", "eval.samples=200",
                              "--set", "log.every=5", "--grid", "optim.name=adam,sgd", "--grid", "loss.name=ns,hinge",
                              "--seeds", "2", "--workers", "2", "--out", str(out)])
    assert cmd_sweep(args) == 0
    assert "executed now: 0, skipped: 8" in capsys.readouterr().out
    with pytest.raises(UserError, match="--workers two"):
        cmd_sweep(parser.parse_args(["sweep", "--grid", "loss.name=ns", "--workers", "two", "--out", str(tmp_path)]))
    with pytest.raises(UserError, match="--grid"):
        cmd_sweep(parser.parse_args(["sweep", "--out", str(tmp_path / "x")]))
    with pytest.raises(UserError, match="/nonexistent/dir"):
        cmd_compare(parser.parse_args(["compare", "/nonexistent/dir", "--out", str(tmp_path / "c")]))
    with pytest.raises(UserError, match="neither a run directory"):
        cmd_compare(parser.parse_args(["compare", str(tmp_path), "--out", str(tmp_path / "c")]))


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
