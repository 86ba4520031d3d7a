"""Shared by the experiments tests: a small ring base config, a runner for the workers, file helpers."""

import json
import os
from pathlib import Path

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

    from saddlepoint import train

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


# ---------------------------------------------------------------------------------- pool tasks (importable by name)
def pool_task(task):
    """Square the number, die with exit code 9 on "die", report this worker's pid and thread setting."""
    if task == "die":
        os._exit(9)
    return task * task, os.getpid(), os.environ.get("POOL_TEST_THREADS")


def pool_init(threads):
    os.environ["POOL_TEST_THREADS"] = str(threads)


def pool_init_fails(threads):
    raise SystemExit(3)
