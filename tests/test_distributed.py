"""Data parallel (gloo, 2 processes spawned from the test) against one process with the global batch.

One launch of two worker processes runs every distributed job (the process group is set up once), the
single-process references run in the test process. Float64 runs use ``torch.set_default_dtype``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import saddlepoint as sp
from saddlepoint.errors import ConfigError
from saddlepoint.train.distributed import SyncBatchNorm, convert_sync_batchnorm
from saddlepoint.train.loop import resume

torch_dist = pytest.importorskip("torch.distributed")
pytestmark = pytest.mark.skipif(not torch_dist.is_available() or not torch_dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

OPTIMIZERS = ("adam", "extragradient", "acgd")
STEPS = 5
TOL = {"float64": 1e-10, "float32": 1e-5}

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    import torch.distributed as dist
    import saddlepoint as sp
    from saddlepoint.train.loop import resume

    jobs = json.loads(sys.argv[1])
    dist.init_process_group("gloo")
    for job in jobs:
        torch.set_default_dtype(getattr(torch, job["dtype"]))
        if "resume" in job:
            resume(job["resume"], {"train": {"steps": job["steps"]}})
        else:
            sp.train(job["config"], out=job["out"])
    dist.destroy_process_group()
    """
)


def config(optim: str, batchnorm: bool, steps: int = STEPS) -> dict:
    return {
        "seed": 3,
        "data": {"name": "ring"},
        "model": {"name": "mlp", "z_dim": 2, "depth": 2, "width": 16, "batchnorm": batchnorm},
        "optim": {"name": optim},
        "train": {"steps": steps, "batch_size": 16, "ema": 0.0},
        "eval": {"samples": 64},
        "log": {"every": 1, "progress": "none", "report": False},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(jobs: list[dict], world: int = 2, timeout: float = 240.0) -> None:
    port = free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
               "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(jobs)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=timeout)
            outputs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"rank {rank} failed:\n{out[-4000:]}"


def run_single(cfg: dict, out: Path, dtype: str) -> None:
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        sp.train(cfg, out=out)
    finally:
        torch.set_default_dtype(old)


def resume_single(run: Path, steps: int, dtype: str) -> None:
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        resume(run, {"train": {"steps": steps}})
    finally:
        torch.set_default_dtype(old)


def state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=False)


def relative_difference(a: dict, b: dict) -> float:
    """‖a − b‖ / ‖b‖ over every parameter and floating buffer of G and D."""
    num = den = 0.0
    for player in ("G", "D"):
        for key, value in b[player].items():
            if value.is_floating_point():
                num += float(torch.sum((a[player][key].double() - value.double()) ** 2))
                den += float(torch.sum(value.double() ** 2))
    return (num / den) ** 0.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every distributed job in one 2-process launch; references in this process."""
    root = tmp_path_factory.mktemp("dist")
    cases = [(o, bn, dt) for dt in ("float64", "float32") for o in OPTIMIZERS for bn in (True, False)]
    jobs = []
    for o, bn, dt in cases:
        name = f"{o}-{'bn' if bn else 'plain'}-{dt}"
        run_single(config(o, bn), root / f"one-{name}", dt)
        jobs.append({"dtype": dt, "config": config(o, bn), "out": str(root / f"two-{name}")})
    # checkpoints across world sizes (ACGD with BatchNorm: warm start, moments, running statistics)
    run_single(config("acgd", True, steps=2), root / "one-then-two", "float64")
    jobs.append({"dtype": "float64", "config": config("acgd", True, steps=2), "out": str(root / "two-then-one")})
    jobs.append({"dtype": "float64", "resume": str(root / "one-then-two"), "steps": STEPS})
    launch(jobs)
    resume_single(root / "two-then-one", STEPS, "float64")
    return root, cases


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batchnorm", [True, False], ids=["batchnorm", "plain"])
@pytest.mark.parametrize("optim", OPTIMIZERS)
def test_two_ranks_match_one_process(runs, optim, batchnorm, dtype):
    root, _ = runs
    name = f"{optim}-{'bn' if batchnorm else 'plain'}-{dtype}"
    one, two = state(root / f"one-{name}"), state(root / f"two-{name}")
    assert two["step"] == one["step"] == STEPS
    assert two["G"][next(iter(two["G"]))].dtype == getattr(torch, dtype)
    diff = relative_difference(two, one)
    assert diff <= TOL[dtype], f"{name}: relative difference {diff:.3g}"
    assert diff > 0 or dtype == "float64" or True  # exact equality is allowed, not required
    # the generators' positions are global: the same in both checkpoints
    assert torch.equal(one["data_gen"], two["data_gen"]) and torch.equal(one["noise_gen"], two["noise_gen"])
    # only rank 0 wrote the run directory, logging averaged losses close to the single process's
    logs = [json.loads(line) for line in (root / f"two-{name}" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(line) for line in (root / f"one-{name}" / "metrics.jsonl").read_text().splitlines()]
    assert len(logs) == len(ref)
    for a, b in zip(logs, ref):
        if "loss_g" in b:
            assert a["loss_g"] == pytest.approx(b["loss_g"], rel=1e-4, abs=1e-6)
            assert a["grad_norm_d"] == pytest.approx(b["grad_norm_d"], rel=1e-4, abs=1e-6)


def test_checkpoints_resume_across_world_sizes(runs):
    root, _ = runs
    reference = state(root / "one-acgd-bn-float64")
    for run in ("two-then-one", "one-then-two"):
        resumed = state(root / run)
        assert resumed["step"] == STEPS
        diff = relative_difference(resumed, reference)
        assert diff <= 1e-10, f"{run}: relative difference {diff:.3g}"
    log = [json.loads(line) for line in (root / "two-then-one" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss_g" in r and not r.get("final")] == list(range(1, STEPS + 1))


def test_batch_not_divisible_is_a_config_error(tmp_path):
    cfg = config("adam", False)
    cfg["train"]["batch_size"] = 15
    jobs = [{"dtype": "float32", "config": cfg, "out": str(tmp_path / "x")}]
    with pytest.raises(AssertionError, match="not divisible by the world size 2"):
        launch(jobs, timeout=120)


def test_sync_batchnorm_is_plain_batchnorm_in_one_process():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    ref = torch.nn.Sequential(*[m for m in net])  # same modules before conversion
    x = torch.randn(8, 3)
    expected = ref(x).detach().clone()
    net = convert_sync_batchnorm(net)
    assert isinstance(net[1], SyncBatchNorm)
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                      "1.running_var", "1.num_batches_tracked", "2.weight", "2.bias"]
    torch.testing.assert_close(net(x), expected)


def test_accelerator_options_on_cpu(tmp_path):
    base = config("adam", True, steps=2)
    base["train"].update({"amp": "bf16", "channels_last": True})
    sp.train(base, out=tmp_path / "bf16")
    assert state(tmp_path / "bf16")["step"] == 2
    bad = config("acgd", True, steps=2)
    bad["train"]["amp"] = "bf16"
    with pytest.raises(ConfigError, match="second-order"):
        sp.train(bad, out=tmp_path / "no")
    fp16 = config("adam", True, steps=2)
    fp16["train"]["amp"] = "fp16"
    with pytest.raises(ConfigError, match="fp16"):
        sp.train(fp16, out=tmp_path / "no16")
    wrong = config("adam", True, steps=2)
    wrong["train"]["amp"] = "fp8"
    with pytest.raises(ConfigError, match="train.amp"):
        sp.train(wrong, out=tmp_path / "no8")
