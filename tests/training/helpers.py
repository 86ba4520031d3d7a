"""Helpers shared by the training tests: small configs, CLI subprocesses, checkpoint comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from saddlepoint.training.checkpoint import load_checkpoint

SMALL_IMAGES = {
    "data": {"name": "mnist-t10k", "limit": 256},
    "model": {"name": "dcgan28", "z_dim": 16, "scale": 0.125},
    "loss": {"name": "ns", "penalty": ["r1"], "r1_weight": 1.0},
    "train": {"batch_size": 16, "ema": 0.9},
    "log": {"every": 2, "progress": "none"},
    "eval": {"samples": 16},
}

#: the 2-D ring on the command line (a small MLP, every step logged)
RING = ["--set", "data.name=ring", "--set", "model.name=mlp", "--set", "model.z_dim=2", "--set", "train.ema=0",
        "--set", "log.progress=none", "--set", "log.every=1"]


def ring_config(**over):
    cfg = {
        "data": {"name": "ring"},
        "model": {"name": "mlp", "z_dim": 2, "width": 32, "depth": 2},
        "train": {"steps": 6, "batch_size": 32, "ema": 0.0},
        "eval": {"samples": 200},
        "log": {"every": 3, "progress": "none"},
    }
    for section, values in over.items():
        cfg.setdefault(section, {}).update(values) if isinstance(values, dict) else cfg.update({section: values})
    return cfg


def with_optim(base, **optim):
    cfg = json.loads(json.dumps(base))
    cfg["optim"] = optim
    return cfg


def final_state(run_dir: Path):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")


def records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


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
