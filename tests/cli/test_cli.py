"""The command line: exit codes, one-line errors, the run directory, sample and list."""

import json
import subprocess
import sys

import numpy as np
import pytest

from saddlepoint.cli import main

RING = ["--set", "data.name=ring", "--set", "model.name=mlp", "--set", "model.z_dim=2",
        "--set", "train.ema=0", "--set", "log.progress=none"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "saddlepoint", *args], capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--set", "optim.name=adamw"], ["optim.name", "adamw", "extragradient", "sgd"]),
        (["train", "--set", "loss.name=vanilla"], ["loss.name", "hinge", "ns"]),
        (["train", "--set", "data.name=imagenet"], ["data.name", "ring", "mnist-t10k"]),
        (["train", "--set", "model.name=resnet"], ["model.name", "dcgan28"]),
        (["train", "--set", "loss.penalty=gpp"], ["gpp", "r1"]),
        (["train", "--set", "train.stepz=3"], ["train.stepz"]),
        (["train", "--set", "train.steps=ten"], ["train.steps"]),
        (["train", "--set", "train.steps=0"], ["train.steps"]),
        (["train", "--config", "/nonexistent/c.yaml"], ["/nonexistent/c.yaml"]),
        (["train", "--set", "optim.lr=[1e-4,1e-4,1e-4]"], ["optim.lr", "per player"]),
        (["train", "--set", "optim.bogus_hp=1"], ["bogus_hp"]),
        (["train", "--bogus"], ["--bogus"]),
        (["frobnicate"], ["frobnicate"]),
        (["train", "--set", "data.name=mnist"], ["data.root"]),
        (["train", "--set", "data.name=mnist", "--set", "data.root=/nonexistent/dir"], ["/nonexistent/dir"]),
        (["train", "--set", "data.name=folder", "--set", "data.root=/nonexistent/imgs"], ["/nonexistent/imgs"]),
        (["sample", "/nonexistent/run"], ["/nonexistent/run"]),
        (["resume", "/nonexistent/run"], ["/nonexistent/run"]),
        (["eval", "/nonexistent/run"], ["/nonexistent/run"]),
        (["list", "colours"], ["colours"]),
    ],
)
def test_bad_input_exit_2_one_line(args, words, tmp_path):
    assert_one_line_error(run_cli(*args, *(["--out", str(tmp_path / "o")] if args[0] == "train" else [])), *words)


def test_bad_data_files(tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    (root / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x0a" + b"\x00" * 10)
    res = run_cli("train", "--set", "data.name=mnist", "--set", f"data.root={root}", "--out", str(tmp_path / "o"))
    assert_one_line_error(res, "t10k-images-idx3-ubyte")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    res = run_cli("train", "--set", "data.name=folder", "--set", f"data.root={imgs}", "--out", str(tmp_path / "o2"))
    assert_one_line_error(res, str(imgs))
    (imgs / "broken.png").write_bytes(b"not a png")
    res = run_cli("train", "--set", "data.name=folder", "--set", f"data.root={imgs}", "--out", str(tmp_path / "o3"))
    assert_one_line_error(res, "broken.png")


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  steps: [oops\n")
    assert_one_line_error(run_cli("train", "--config", str(cfg)), str(cfg))
    cfg.write_text("train:\n  batch_size: large\n")
    assert_one_line_error(run_cli("train", "--config", str(cfg)), "train.batch_size")


def test_list(capsys):
    assert main(["list", "optimizers"]) == 0
    names = capsys.readouterr().out.split()
    assert {"sgd", "momentum", "nesterov", "adam", "rmsprop"} <= set(names)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("datasets", "models", "losses", "penalties", "optimizers", "metrics"):
        assert kind in out


def test_ring_run_directory_sample_and_refusal(tmp_path, capsys):
    out = tmp_path / "ring"
    assert main(["train", *RING, "--set", "train.steps=30", "--set", "log.every=10", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].endswith("final.png")
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints/last.pt", "samples/final.png"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss_g" in r] == [10, 20, 30]
    for key in ("loss_g", "loss_d", "grad_norm_g", "grad_norm_d", "d_real", "d_fake", "time"):
        assert np.isfinite(records[0][key])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 30
    assert set(summary["metrics"]) == {"modes", "hq", "kl"}
    # sample reads the checkpoint: raw .npy samples, deterministic in the seed
    assert main(["sample", str(out), "--n", "16", "--seed", "3", "--out", str(tmp_path / "a.npy")]) == 0
    assert main(["sample", str(out), "--n", "16", "--seed", "3", "--out", str(tmp_path / "b.npy")]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (16, 2) and np.array_equal(a, b)
    assert main(["sample", str(out), "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 1000
    # an existing run is never overwritten
    before = (out / "metrics.jsonl").read_bytes()
    assert main(["train", *RING, "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_bytes() == before


def test_corrupt_checkpoint_is_rejected(tmp_path, capsys):
    out = tmp_path / "ring"
    assert main(["train", *RING, "--set", "train.steps=5", "--out", str(out)]) == 0
    ckpt = out / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    capsys.readouterr()
    assert main(["sample", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "last.pt" in err


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", *RING, "--set", "train.steps=2", "--out", str(blocker / "sub")]) == 2
    assert "--out" in capsys.readouterr().err


def test_evaluation_during_training_best_checkpoint_and_eval_command(tmp_path, capsys):
    out = tmp_path / "ring"
    args = ["train", *RING, "--set", "train.steps=40", "--set", "eval.every=10", "--set", "eval.samples=300",
            "--set", "log.every=10", "--out", str(out)]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r["step"] for r in records if "modes" in r]
    assert evaluated == [10, 20, 30, 40]  # every eval.every steps, plus the final evaluation
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best"]
    assert best["metric"] == "kl" and best["mode"] == "min"
    best_kl = min(r["kl"] for r in records if "kl" in r)
    assert best["value"] == pytest.approx(best_kl)
    assert (out / "checkpoints" / "best.pt").is_file()
    capsys.readouterr()
    assert main(["eval", str(out), "--metrics", "modes", "--samples", "500", "--no-ema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"modes", "hq", "kl"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval"]["raw"]["samples"] == 500 and summary["eval"]["raw"]["modes"] == printed["modes"]
    assert main(["eval", str(out), "--metrics", "fid"]) == 2  # FID needs image data and features
    assert capsys.readouterr().err.startswith("error: ")


def test_train_on_a_dataset_uses_its_preset(tmp_path):
    out = tmp_path / "ring"
    res = run_cli("train", "--set", "data.name=ring", "--set", "train.steps=20", "--set", "log.progress=none",
                  "--set", "eval.samples=200", "--out", str(out))
    assert res.returncode == 0, res.stderr
    from pathlib import Path

    import yaml

    resolved = yaml.safe_load((out / "config.yaml").read_text())
    preset = yaml.safe_load((Path(__file__).parents[2] / "configs" / "ring.yaml").read_text())
    assert resolved["model"]["name"] == "mlp" and resolved["model"]["width"] == preset["model"]["width"]
    assert resolved["train"]["batch_size"] == preset["train"]["batch_size"] and resolved["train"]["steps"] == 20
