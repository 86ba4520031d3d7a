"""The run directory: the resume policy, the one handshake, writes on the main rank only, log truncation."""

import json

import pytest

from saddlepoint.cli import main
from saddlepoint.config import build_config
from saddlepoint.errors import UserError
from saddlepoint.training import train as train_run
from saddlepoint.training.checkpoint import load_checkpoint
from saddlepoint.training.run_dir import RunDir, check_resumable, prepare_out_dir, truncate_log
from saddlepoint.training.world import World

from .helpers import SMALL_IMAGES, ring_config, with_optim


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


def test_the_resume_policy_is_the_configs():
    old = build_config(ring_config())
    check_resumable("r", old, build_config(ring_config(train={"steps": 9, "threads": 1}, log={"every": 1},
                                                       eval={"every": 2}, checkpoint={"every": 3})), False)
    with pytest.raises(UserError, match="seed"):
        check_resumable("r", old, build_config({**ring_config(), "seed": 5}), False)
    check_resumable("r", old, build_config({**ring_config(), "seed": 5}), True)


def test_an_existing_run_is_never_reused(tmp_path):
    cfg = build_config(ring_config())
    out = prepare_out_dir(tmp_path / "a", cfg)
    assert (out / "samples").is_dir()
    (out / "config.yaml").write_text("x")
    with pytest.raises(UserError, match="already holds a run"):
        prepare_out_dir(out, cfg)


def test_truncate_log_drops_later_final_and_torn_records(tmp_path):
    log = tmp_path / "metrics.jsonl"
    lines = [{"step": 1}, {"step": 2}, {"step": 2, "final": True}, {"step": 3}]
    log.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 4, "los')
    truncate_log(log, 2)
    assert [json.loads(x) for x in log.read_text().splitlines()] == [{"step": 1}, {"step": 2}]


class OtherRank(World):
    """A world in which this process is not rank 0 (identities otherwise)."""

    rank = 1


def test_only_the_main_rank_writes(tmp_path):
    quiet = RunDir(tmp_path, OtherRank())
    quiet.log({"step": 1})
    quiet.write_summary(lambda: {"status": "x"})
    quiet.save_checkpoint(lambda: {"format": "saddlepoint-checkpoint"}, 1, 3)
    quiet.save_best(lambda: {})
    assert quiet.save_samples("final", lambda: None, None) == tmp_path / "samples" / "final.png"
    assert list(tmp_path.iterdir()) == []
    loud = RunDir(tmp_path, World())
    loud.log({"step": 1})
    loud.write_summary(lambda: {"status": "x"})
    assert json.loads((tmp_path / "summary.json").read_text()) == {"status": "x"}
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_numbered_checkpoints_are_kept_as_links(tmp_path):
    run_dir = RunDir(tmp_path, World())
    for step in range(1, 6):
        run_dir.save_checkpoint(lambda step=step: {"format": "saddlepoint-checkpoint", "step": step}, step, 3)
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step_*.pt")) == ["step_00000004.pt", "step_00000005.pt"]
    assert (ckpts / "last.pt").stat().st_ino == (ckpts / "step_00000005.pt").stat().st_ino
    assert load_checkpoint(ckpts / "last.pt")["step"] == 5


def test_the_handshake_hands_over_the_path_or_the_error(tmp_path):
    cfg = build_config(ring_config())
    run_dir = RunDir.create(tmp_path / "new", cfg, World())
    assert run_dir.path == tmp_path / "new" and (run_dir.path / "config.yaml").is_file()
    with pytest.raises(UserError, match="already holds a run"):
        RunDir.create(tmp_path / "new", cfg, World())
