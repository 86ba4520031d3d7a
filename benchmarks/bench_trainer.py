"""Trainer overhead: one saddlepoint training step ÷ one step of a bare PyTorch loop (not part of the tests).

Both sides train the same DCGAN-28 (scale 1, z_dim 100) on MNIST t10k, batch 64, non-saturating loss,
Adam (lr 2e-4, β = (0.5, 0.999)), alternating (D first, then G), no evaluation and no EMA:

* **bare**: the textbook loop written here — G(z) once, D on the real and the detached fake batch,
  ``loss_D.backward()``, ``torch.optim.Adam.step()``, then D(fake) and ``loss_G.backward()`` for G;
* **saddlepoint**: :func:`saddlepoint.training.setup` from a config, then exactly the per-step work of
  ``Trainer.run``: play (``game_step``), agree (``world.average``), guard (the finiteness check) and the
  table of periodic work (here the JSONL logging every 100 steps).

The two step round-robin in blocks of ``--block`` steps (the order flipped every round, A/B/B/A), after
``--warmup`` rounds; the ratio is the median over rounds of (saddlepoint block time ÷ the adjacent bare
block time), so drifting machine load hits both sides alike. Goal (issue 7): ≤ 1.03. Writes
``benchmarks/results/trainer.json`` (``trainer-quick.json`` with ``--quick``).

    python benchmarks/bench_trainer.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the machine's cores)")
ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 30, quick 8)")
ap.add_argument("--block", type=int, default=5, help="steps per side per round")
ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
ap.add_argument("--out", default=None)
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as ``import saddlepoint`` sets it (docs/distributed.md)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from saddlepoint.config import build_config  # noqa: E402
from saddlepoint.models import build_models  # noqa: E402
from saddlepoint.training import setup  # noqa: E402

torch.set_num_threads(args.threads)
ROUNDS = args.rounds or (8 if args.quick else 30)
BATCH, Z_DIM, LR, BETAS = 64, 100, 2e-4, (0.5, 0.999)
RESULTS = Path(__file__).resolve().parent / "results"


class Bare:
    """The hand-written alternating DCGAN loop."""

    def __init__(self, images: torch.Tensor) -> None:
        torch.manual_seed(0)
        self.G, self.D = build_models("dcgan28", (1, 28, 28), Z_DIM, scale=1.0)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)
        self.images = images
        self.gen = torch.Generator().manual_seed(0)

    def step(self) -> None:
        real = self.images[torch.randint(len(self.images), (BATCH,), generator=self.gen)]
        z = torch.randn(BATCH, Z_DIM, generator=self.gen)
        fake = self.G(z)
        loss_d = F.softplus(-self.D(real)).mean() + F.softplus(self.D(fake.detach())).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        loss_g = F.softplus(-self.D(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()


class Ours:
    """A saddlepoint Trainer, stepped as ``Trainer.run`` steps it."""

    def __init__(self, out: Path) -> None:
        cfg = build_config({
            "seed": 0,
            "data": {"name": "mnist-t10k"},
            "model": {"name": "dcgan28", "z_dim": Z_DIM, "scale": 1.0},
            "loss": {"name": "ns"},
            "optim": {"name": "adam", "lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "scheme": "alternating"},
            "train": {"batch_size": BATCH, "steps": 10**9, "ema": 0.0, "threads": args.threads},
            "eval": {"every": 0},
            "log": {"every": 100, "progress": "none"},
            "checkpoint": {"every": 0},
        })
        out.mkdir(parents=True, exist_ok=True)
        self.trainer = setup(cfg, out)
        self.table = self.trainer.schedule()
        self.start = time.perf_counter()

    def step(self) -> None:
        t = self.trainer
        losses, aux = t.game_step()
        losses, aux, _ = t.world.average(losses, aux, False)
        t.step += 1
        t.elapsed = time.perf_counter() - self.start
        t.check_finite(losses)
        t.played = losses, aux
        for due, task in self.table:
            if due(t.step):
                task()


def timed_block(runner, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        runner.step()
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours = Ours(Path(tmp) / "run")
        images = ours.trainer.dataset.sample(10_000, torch.Generator().manual_seed(1))
        bare = Bare(images)
        ratios, t_ours, t_bare = [], [], []
        for r in range(args.warmup + ROUNDS):
            pair = (ours, bare) if r % 2 == 0 else (bare, ours)
            times = {id(runner): timed_block(runner, args.block) for runner in pair}
            if r < args.warmup:
                continue
            a, b = times[id(ours)] / args.block, times[id(bare)] / args.block
            t_ours.append(a)
            t_bare.append(b)
            ratios.append(a / b)
    result = {
        "machine": {"cores": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
                    "python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "setup": {"model": "dcgan28 scale 1 z_dim 100", "batch": BATCH, "loss": "ns", "optimizer": "adam alternating",
                  "lr": LR, "rounds": ROUNDS, "block": args.block, "warmup_rounds": args.warmup},
        "seconds_per_step": {"saddlepoint": statistics.median(t_ours), "bare": statistics.median(t_bare)},
        "ratio_median": statistics.median(ratios),
        "ratio_of_medians": statistics.median(t_ours) / statistics.median(t_bare),
        "ratio_quartiles": [float(q) for q in statistics.quantiles(ratios, n=4)] if len(ratios) > 1 else ratios,
        "goal": 1.03,
    }
    result["goal_met"] = result["ratio_median"] <= result["goal"]
    out = Path(args.out) if args.out else RESULTS / ("trainer-quick.json" if args.quick else "trainer.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["seconds_per_step"]
    print(f"bare {s['bare']:.4f} s/step   saddlepoint {s['saddlepoint']:.4f} s/step   "
          f"ratio {result['ratio_median']:.3f} (quartiles {', '.join(f'{q:.3f}' for q in result['ratio_quartiles'])}; "
          f"goal ≤ {result['goal']})")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
