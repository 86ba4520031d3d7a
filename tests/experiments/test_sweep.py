"""Sweeps: grid × seeds in worker processes, re-runs skip finished runs, failures recorded."""

import argparse
import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from saddlepoint.errors import UserError
from saddlepoint.experiments import available_cores, compare, parse_grid, sweep
from saddlepoint.experiments.cli import add_compare_parser, add_sweep_parser, cmd_compare, cmd_sweep

from .helpers import BASE, GRID, read_jsonl, recording_runner, snapshot


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


def test_the_readme_sweep_over_the_ring_preset(tmp_path, capsys):
    """README: saddlepoint sweep --config configs/ring.yaml --grid optim.name=adam,extragradient
    --grid loss.name=ns,hinge --seeds 3 --workers 2 --out sweeps/ring (shortened: 3 steps, one seed)."""
    parser = argparse.ArgumentParser()
    add_sweep_parser(parser.add_subparsers(dest="command"))
    ring = Path(__file__).parents[2] / "configs" / "ring.yaml"
    out = tmp_path / "ring"
    args = parser.parse_args(["sweep", "--config", str(ring), "--grid", "optim.name=adam,extragradient",
                              "--grid", "loss.name=ns,hinge", "--seeds", "1", "--workers", "2", "--out", str(out),
                              "--set", "train.steps=3", "--set", "eval.samples=50", "--set", "log.report=false"])
    assert cmd_sweep(args) == 0
    rows = read_jsonl(out / "results.jsonl")
    assert [r["status"] for r in rows] == ["completed"] * 4
    for row in rows:
        written = yaml.safe_load((out / row["dir"] / "config.yaml").read_text())
        assert written["optim"]["name"] == row["optim.name"] and written["optim"]["lr"] == 0.002
        assert written["dropped"] == ({"optim.base": "adam"} if row["optim.name"] == "adam" else {})
