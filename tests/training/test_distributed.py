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
from saddlepoint.training import resume
from saddlepoint.training.distributed import SyncBatchNorm, convert_sync_batchnorm

torch_dist = pytest.importorskip("torch.distributed")
pytestmark = pytest.mark.skipif(not torch_dist.is_available() or not torch_dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

OPTIMIZERS = ("adam", "extragradient", "acgd", "follow-ridge", "adahessian")
STEPS = 5
TOL = {"float64": 1e-10, "float32": 1e-5}

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    import torch.distributed as dist
    import saddlepoint as sp
    from saddlepoint.training import resume

    jobs = json.loads(sys.argv[1])
    dist.init_process_group("gloo")
    for job in jobs:
        torch.set_default_dtype(getattr(torch, job["dtype"]))
        if "resume" in job:
            resume(job["resume"], {"train": {"steps": job["steps"]}})
        elif "evaluate" in job:
            from training.test_distributed import evaluation
            evaluation(job["evaluate"], job["result"])
        elif "skip" in job:
            from training.test_distributed import skip_agreement
            skip_agreement(job["skip"])
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


def fp16_config(steps: int = STEPS) -> dict:
    cfg = config("adam", True, steps)
    cfg["train"]["amp"] = "fp16"
    cfg["eval"]["every"] = 2  # periodic sharded evaluation during training, too
    return cfg


def eval_configs() -> dict[str, dict]:
    """Sharded-evaluation cases: ``modes`` on the ring with 1001 samples (shards of 500 and 501) from
    :class:`RingMap`, and ``fid`` (shipped MNIST features) of an untrained DCGAN-28 with 101 samples."""
    ring = config("adam", False)
    ring["eval"] = {"samples": 1001, "metrics": ["modes"]}
    mnist = {
        "seed": 4,
        "data": {"name": "mnist-t10k"},
        "model": {"name": "dcgan28", "z_dim": 16, "scale": 0.125},
        "train": {"steps": 1, "batch_size": 16, "ema": 0.0},
        "eval": {"samples": 101, "metrics": ["fid"], "real_samples": 300, "cache_dir": "none"},
        "log": {"progress": "none", "report": False},
    }
    return {"ring": ring, "mnist": mnist}


class RingMap(torch.nn.Module):
    """A stand-in ring generator with non-trivial mode statistics: sample j lands near centre
    ⌊3|z₀|⌋ mod 8 (uneven mode frequencies), 2σ-scale jitter, and off every mode when z₁ > 1.2."""

    z_dim = 2

    def __init__(self, centers: torch.Tensor, std: float) -> None:
        super().__init__()
        self.register_buffer("centers", centers.float())
        self.std = std

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = (3 * z[:, 0].abs()).floor().long() % len(self.centers)
        off = (z[:, 1:2] > 1.2).float() * 0.5
        return self.centers[k] + self.std * z.tanh() + off


def evaluation(cfg: dict, result: str) -> None:
    """Evaluate seeded fresh models (the ring: :class:`RingMap`) with the trainer, in one process or as one
    rank of the launched job; rank 0 saves the metrics and the evaluation samples."""
    from saddlepoint.config import build_config
    from saddlepoint.training import setup
    from saddlepoint.training.evaluation import eval_samples

    trainer = setup(build_config(cfg), Path(result).parent)
    if getattr(trainer.dataset, "centers", None) is not None:
        trainer.G = RingMap(trainer.dataset.centers, float(trainer.dataset.std))
    metrics = trainer.evaluate()
    n = trainer.cfg.eval.samples
    samples = eval_samples(trainer.world, n, lambda z: trainer.generate(len(z), z=z), trainer.G.z_dim, trainer.cfg.seed)
    if trainer.world.main:
        torch.save({"metrics": metrics, "samples": samples}, result)


def skip_agreement(out: str) -> None:
    """fp16 under data parallel: an overflow on rank 1 alone (step 1) must make every rank skip."""
    from torch import nn

    from saddlepoint.optim import LossScaler, build
    from saddlepoint.training import distributed

    rank, world = torch_dist.get_rank(), torch_dist.get_world_size()
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    gen = torch.Generator().manual_seed(10 + rank)  # each rank its own shard
    real, z = torch.randn(8, 2, generator=gen) + 2, torch.randn(8, 2, generator=gen)
    opt = build("adam", [list(G.parameters()), list(D.parameters())])
    opt.configure(reduce=distributed.make_reduce(world), scaler=LossScaler())
    skipped = []
    for step in range(4):
        factor = 1e30 if (rank == 1 and step == 1) else 1.0

        def closure(factor=factor):
            with torch.autocast("cpu", dtype=torch.float16):
                d_fake, d_real = D(G(z)).float(), D(real).float()
            loss_d = nn.functional.softplus(-d_real).mean() + nn.functional.softplus(d_fake).mean()
            return [factor * nn.functional.softplus(-d_fake).mean(), factor * loss_d]

        opt.step(closure)
        skipped.append(opt.last_step_skipped)
    torch.save({"skipped": skipped, "scale": opt.scaler.scale,
                "params": [p.detach() for p in [*G.parameters(), *D.parameters()]]}, f"{out}/rank{rank}.pt")


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
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), *filter(None, [env.get("PYTHONPATH")])])
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
    # fp16 (one loss scaler) with synchronised BatchNorm; an overflow on one rank only
    run_single(fp16_config(), root / "one-fp16", "float32")
    jobs.append({"dtype": "float32", "config": fp16_config(), "out": str(root / "two-fp16")})
    (root / "skip").mkdir()
    jobs.append({"dtype": "float32", "skip": str(root / "skip")})
    # sharded evaluation: the same models evaluated by 1 and 2 processes
    for name, cfg in eval_configs().items():
        evaluation(cfg, str(root / f"eval-one-{name}.pt"))
        jobs.append({"dtype": "float32", "evaluate": cfg, "result": str(root / f"eval-two-{name}.pt")})
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


def test_fp16_two_ranks_match_one_process(runs):
    """fp16 autocast + loss scaler + synchronised BatchNorm: 2 ranks against 1 process after 5 Adam steps
    (measured relative difference 3.4e-6, limit 1e-4: the sums of the synchronised statistics and of the
    averaged gradients are ordered differently, and float16 rounding amplifies the last-bit differences;
    float32 without autocast: ≤ 5e-8), and the same loss-scaler state."""
    root, _ = runs
    one, two = state(root / "one-fp16"), state(root / "two-fp16")
    assert one["optimizer"]["scaler"] == two["optimizer"]["scaler"]
    assert one["optimizer"]["scaler"]["clean_steps"] == STEPS
    diff = relative_difference(two, one)
    print(f"fp16 2 ranks vs 1 process: relative difference {diff:.3g}")
    assert diff <= 1e-4, f"fp16: relative difference {diff:.3g}"
    for run in ("one-fp16", "two-fp16"):
        log = [json.loads(line) for line in (root / run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log if "modes" in r] == [2, 4, STEPS]
        assert [r["amp_scale"] for r in log if "amp_scale" in r] == [2.0**16] * STEPS


def test_fp16_every_rank_takes_the_same_skip_decision(runs):
    root, _ = runs
    ranks = [torch.load(root / "skip" / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert ranks[0]["skipped"] == ranks[1]["skipped"] == [False, True, False, False]
    assert ranks[0]["scale"] == ranks[1]["scale"] == 2.0**15
    assert all(torch.equal(a, b) for a, b in zip(ranks[0]["params"], ranks[1]["params"]))
    assert all(torch.isfinite(p).all() for p in ranks[0]["params"])


@pytest.mark.parametrize("name", ["ring", "mnist"])
def test_sharded_evaluation_matches_one_process(runs, name):
    """Each of 2 ranks generates its rows of the same global evaluation noise (and extracts their
    features for FID); the gathered samples and the metrics equal one process's (limit 1e-6)."""
    root, _ = runs
    one = torch.load(root / f"eval-one-{name}.pt", weights_only=False)
    two = torch.load(root / f"eval-two-{name}.pt", weights_only=False)
    assert one["samples"].shape == two["samples"].shape and len(one["samples"]) in (1001, 101)
    gap = float((one["samples"] - two["samples"]).abs().max())
    print(f"{name}: samples max |difference| {gap:.3g}; metrics {one['metrics']} vs {two['metrics']}")
    assert gap <= 1e-6
    assert one["metrics"].keys() == two["metrics"].keys() and one["metrics"]
    for key, value in one["metrics"].items():
        assert two["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    if name == "mnist":
        assert one["metrics"]["fid"] > 1.0
    else:  # non-trivial mode statistics: several modes, most samples of high quality, uneven coverage
        assert 3 <= one["metrics"]["modes"] <= 8 and 0.5 < one["metrics"]["hq"] < 1.0
        assert 0.01 < one["metrics"]["kl"] < 2.0


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
    wrong = config("adam", True, steps=2)
    wrong["train"]["amp"] = "fp8"
    with pytest.raises(ConfigError, match="train.amp"):
        sp.train(wrong, out=tmp_path / "no8")
