"""Checkpoints: what they hold, safe loading, crash consistency, and the fallback when last.pt is damaged."""

import json
import random
import time
from pathlib import Path

import pytest
import torch

from saddlepoint.cli import main
from saddlepoint.config import build_config
from saddlepoint.errors import CheckpointError
from saddlepoint.training import setup
from saddlepoint.training import train as train_run
from saddlepoint.training.checkpoint import DamagedCheckpoint, load_checkpoint, newest_intact, set_aside

from .helpers import RING, SMALL_IMAGES, assert_trees_equal, records, ring_config, spawn, wait_for, with_optim


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
    steps = [r["step"] for r in records(out) if "loss_g" in r]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no torn or duplicated records


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


def truncate(path: Path) -> None:
    """Cut a file to 100 bytes in place (every hard link to it is cut too)."""
    path.write_bytes(path.read_bytes()[:100])


def test_damaged_and_unsafe_checkpoints_are_told_apart(tmp_path):
    run = train_run(ring_config(train={"steps": 2}), tmp_path / "r")
    last = run / "checkpoints" / "last.pt"
    truncate(last)
    with pytest.raises(DamagedCheckpoint, match="truncated"):
        load_checkpoint(last)
    torch.save({"format": "saddlepoint-checkpoint", "evil": _Payload(str(tmp_path / "x"))}, last)
    with pytest.raises(CheckpointError, match="rejected") as info:
        newest_intact(run / "checkpoints")  # an unsafe file is never skipped
    assert not isinstance(info.value, DamagedCheckpoint)


def test_set_aside_keeps_every_damaged_file(tmp_path):
    a = tmp_path / "last.pt"
    for k in range(2):
        a.write_text(f"damaged {k}")
        assert set_aside([a]) == [tmp_path / f"last.pt.damaged-{k + 1}"]
    assert not a.exists() and (tmp_path / "last.pt.damaged-1").read_text() == "damaged 0"


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, capsys):
    """A truncated last.pt (its hard-linked step copy too): resume says so in one line, keeps the damaged
    files aside and continues from the newest intact checkpoint, exactly as from that checkpoint."""
    cfg = ring_config(train={"steps": 6}, log={"every": 1}, checkpoint={"every": 2, "keep": 4})
    run = train_run(cfg, tmp_path / "run")
    straight = train_run(ring_config(train={"steps": 8}, log={"every": 1}, checkpoint={"every": 2, "keep": 4}),
                         tmp_path / "straight")
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step_*.pt")) == ["step_00000002.pt", "step_00000004.pt",
                                                               "step_00000006.pt"]
    damaged = (ckpts / "last.pt").read_bytes()[:100]
    truncate(ckpts / "last.pt")  # step_00000006.pt is the same file
    capsys.readouterr()
    assert main(["resume", str(run), "--set", "train.steps=8"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "last.pt" in err[0] and "step_00000004.pt" in err[0] and "step 4" in err[0], err
    assert (ckpts / "last.pt.damaged-1").read_bytes() == damaged
    assert (ckpts / "step_00000006.pt.damaged-1").is_file()
    resumed, reference = load_checkpoint(ckpts / "last.pt"), load_checkpoint(straight / "checkpoints" / "last.pt")
    assert resumed["step"] == 8
    for key in ("G", "D", "optimizer", "data_gen", "noise_gen", "dataset"):
        assert_trees_equal(resumed[key], reference[key], key)
    strip = [[{k: v for k, v in r.items() if k != "time"} for r in records(d) if not r.get("final")]
             for d in (run, straight)]
    assert strip[0] == strip[1]  # the log was cut back to step 4 and continued from there


def test_resume_without_any_intact_checkpoint_is_one_error_line(tmp_path, capsys):
    run = train_run(ring_config(train={"steps": 2}), tmp_path / "run")
    truncate(run / "checkpoints" / "last.pt")
    capsys.readouterr()
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "last.pt" in err and err.count("\n") == 1
    assert (run / "checkpoints" / "last.pt").is_file()  # nothing moved when nothing can be resumed


def test_checkpoint_round_trip_of_the_trainer_state(tmp_path):
    cfg = build_config(ring_config(optim={"name": "adam"}, train={"steps": 3, "ema": 0.5}))
    (tmp_path / "samples").mkdir()
    a = setup(cfg, tmp_path)
    a.run()
    b = setup(cfg, tmp_path)
    b.load_state(a.state())
    assert b.step == 3
    assert_trees_equal(a.state()["G"], b.state()["G"])
    assert_trees_equal(a.state()["optimizer"], b.state()["optimizer"])
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 3
