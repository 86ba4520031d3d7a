"""Checkpoints, exact resume, signals, divergence, unsafe checkpoints."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from saddlepoint.cli import main
from saddlepoint.config import build_config
from saddlepoint.train import resume, setup
from saddlepoint.train import train as train_run
from saddlepoint.train.checkpoint import load_checkpoint

SMALL_IMAGES = {
    "data": {"name": "mnist-t10k", "limit": 256},
    "model": {"name": "dcgan28", "z_dim": 16, "scale": 0.125},
    "loss": {"name": "ns", "penalty": ["r1"], "r1_weight": 1.0},
    "train": {"batch_size": 16, "ema": 0.9},
    "log": {"every": 2, "progress": "none"},
    "eval": {"samples": 16},
}


def with_optim(base, **optim):
    cfg = json.loads(json.dumps(base))
    cfg["optim"] = optim
    return cfg


def final_state(run_dir: Path):
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    return ckpt


def assert_trees_equal(a, b, path="") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            assert_trees_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_trees_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


@pytest.mark.parametrize(
    "optim",
    [
        {"name": "adam", "lr": 2e-4, "scheme": "alternating"},
        {"name": "extragradient", "lr": 2e-4},
        {"name": "acgd", "lr": 1e-3},
    ],
)
def test_resume_is_bit_identical(optim, tmp_path):
    steps = 6
    straight = train_run({**with_optim(SMALL_IMAGES, **optim), "train": {**SMALL_IMAGES["train"], "steps": steps}},
                         tmp_path / "straight")
    half = train_run({**with_optim(SMALL_IMAGES, **optim), "train": {**SMALL_IMAGES["train"], "steps": steps // 2}},
                     tmp_path / "half")
    resume(half, {"train": {"steps": steps}})
    a, b = final_state(straight), final_state(half)
    assert a["step"] == b["step"] == steps
    for key in ("G", "D", "ema", "optimizer", "rng", "data_gen", "noise_gen", "dataset"):
        assert_trees_equal(a[key], b[key], key)
    # the log of the resumed run agrees with the straight one at every logged step (times aside); the
    # interrupted run also logged its last step, 3
    logs = []
    for run in (straight, half):
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        logs.append({r["step"]: {k: v for k, v in r.items() if k != "time"} for r in records if "loss_g" in r})
    assert set(logs[0]) <= set(logs[1]) and len(logs[0]) == 3
    assert all(logs[0][s] == logs[1][s] for s in logs[0])


def test_resume_refuses_changed_config(tmp_path, capsys):
    run = train_run(with_optim({**SMALL_IMAGES, "train": {**SMALL_IMAGES["train"], "steps": 2}}, name="adam"),
                    tmp_path / "r")
    before = (run / "checkpoints" / "last.pt").read_bytes()
    assert main(["resume", str(run), "--set", "optim.lr=0.1", "--set", "loss.name=hinge"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optim.lr" in err and "loss.name" in err and "--force" in err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    assert main(["resume", str(run), "--set", "train.steps=3", "--set", "log.every=1"]) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3
    assert main(["resume", str(run), "--force", "--set", "optim.lr=1e-3", "--set", "train.steps=4"]) == 0


RING = ["--set", "data.name=ring", "--set", "model.name=mlp", "--set", "model.z_dim=2", "--set", "train.ema=0",
        "--set", "log.progress=none", "--set", "log.every=1"]


def spawn(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "saddlepoint", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for(path: Path, proc, timeout=120.0):
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout
        time.sleep(0.02)


def test_sigterm_checkpoints_and_exits_130(tmp_path):
    out = tmp_path / "run"
    proc = spawn("train", *RING, "--set", "train.steps=100000", "--out", str(out))
    wait_for(out / "metrics.jsonl", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().startswith("error: interrupted")
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == ckpt["step"] > 0
    assert main(["resume", str(out), "--set", f"train.steps={ckpt['step'] + 5}"]) == 0
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"


def test_sigkill_at_random_moments_leaves_a_resumable_checkpoint(tmp_path):
    out = tmp_path / "run"
    rng = random.Random(1)
    args = [*RING, "--set", "model.width=512", "--set", "checkpoint.every=1", "--set", "checkpoint.keep=2",
            "--set", "train.steps=100000"]
    proc = spawn("train", *args, "--out", str(out))
    for _ in range(4):
        wait_for(out / "checkpoints" / "last.pt", proc)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.kill()
        proc.wait()
        ckpt = load_checkpoint(out / "checkpoints" / "last.pt")  # intact, whatever the moment
        assert ckpt["step"] >= 1
        proc = spawn("resume", str(out), *["--set", "train.steps=100000"])
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    step = load_checkpoint(out / "checkpoints" / "last.pt")["step"]
    assert main(["resume", str(out), "--set", f"train.steps={step + 3}"]) == 0
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == step + 3
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss_g" in r]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no torn or duplicated records


def test_divergence_exits_3_and_keeps_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *RING, "--set", "train.steps=4", "--set", "optim.name=sgd", "--out", str(out)]) == 0
    good = (out / "checkpoints" / "last.pt").read_bytes()
    capsys.readouterr()
    code = main(["resume", str(out), "--force", "--set", "optim.lr=1e30", "--set", "train.steps=50",
                 "--set", "checkpoint.every=1"])
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: training diverged at step")
    assert "player" in err[0]
    # the last checkpoint is a good one: loadable, finite, from before the divergence
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    diverged_at = int(err[0].split("at step ")[1].split(":")[0])
    assert 4 <= ckpt["step"] < diverged_at
    assert all(torch.isfinite(t).all() for part in ("G", "D") for t in ckpt[part].values())
    assert good != (out / "checkpoints" / "last.pt").read_bytes() or ckpt["step"] == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and "diverged" in summary["error"]
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "diverged" and last["player"] in ("G", "D")


class _Payload:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_malicious_checkpoint_is_rejected_without_running(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *RING, "--set", "train.steps=2", "--out", str(out)]) == 0
    marker = tmp_path / "pwned"
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    ckpt["evil"] = _Payload(str(marker))
    torch.save(ckpt, out / "checkpoints" / "last.pt")
    capsys.readouterr()
    for command in (["sample", str(out)], ["resume", str(out)], ["eval", str(out)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "last.pt" in err and err.count("\n") == 1
    assert not marker.exists()


def test_checkpoint_holds_everything(tmp_path):
    run = train_run(with_optim({**SMALL_IMAGES, "train": {**SMALL_IMAGES["train"], "steps": 2}}, name="lookahead",
                               inner="optimistic", k=2), tmp_path / "r")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    for key in ("G", "D", "ema", "optimizer", "rng", "data_gen", "noise_gen", "dataset", "step", "elapsed",
                "config", "versions"):
        assert key in ckpt, key
    assert {"python", "numpy", "torch"} <= set(ckpt["rng"])
    trainer = setup(build_config(ckpt["config"]), run)
    trainer.load_state(ckpt)
    assert trainer.step == 2
