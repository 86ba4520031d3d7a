"""Step time of data-parallel training: 2 processes × 1 thread against 1 process × 2 threads.

Same global batch, DCGAN-28 on MNIST-t10k, one game step (both players) per timing; the trainer is built
by ``saddlepoint.training.setup`` exactly as ``saddlepoint train`` builds it (gloo all-reduce of the
gradients, synchronised BatchNorm). Writes ``benchmarks/results/distributed.json``.

    python benchmarks/bench_distributed.py [--optim adam] [--batch 64] [--steps 20] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "distributed.json"


def worker(args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist

    from saddlepoint.config import build_config
    from saddlepoint.training import setup

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    cfg = build_config({
        "data": {"name": "mnist-t10k"},
        "model": {"name": "dcgan28"},
        "optim": {"name": args.optim},
        "train": {"batch_size": args.batch, "threads": args.threads, "ema": 0.0, "sync_bn": not args.no_sync_bn},
    })
    trainer = setup(cfg, Path("."))
    times = []
    for i in range(args.warmup + args.steps):
        if world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        trainer.game_step()
        if world > 1:
            dist.barrier()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    if int(os.environ.get("RANK", "0")) == 0:
        times.sort()
        print(json.dumps({"median_s": times[len(times) // 2], "min_s": times[0], "threads": torch.get_num_threads(),
                          "processes": world}))
    if world > 1:
        dist.destroy_process_group()


def launch(args: argparse.Namespace, world: int, threads: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, __file__, "--worker", "--optim", args.optim, "--batch", str(args.batch),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(threads)]
    cmd += ["--no-sync-bn"] if args.no_sync_bn else []
    procs = []
    for rank in range(world):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        if world > 1:
            env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                       LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"benchmark worker failed: {outs}")
    return json.loads(outs[0].strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--optim", default="adam")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-sync-bn", action="store_true", help="plain per-rank BatchNorm (for comparison)")
    parser.add_argument("--quick", action="store_true", help="5 timed steps after 1 warm-up (about a minute)")
    parser.add_argument("--out", default=str(RESULTS), help="results file (entries are merged by optimizer)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 5, 1
    if args.worker:
        worker(args)
        return
    cores = len(os.sched_getaffinity(0))
    if os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.2f}: other jobs will distort the timings", file=sys.stderr)
    one = launch(args, world=1, threads=cores)
    two = launch(args, world=2, threads=max(1, cores // 2))
    import torch

    result = {
        "benchmark": "step time, DCGAN-28 (mnist-t10k), global batch "
                     f"{args.batch}, optimizer {args.optim}, median of {args.steps} steps after {args.warmup} warm-up",
        "one_process": one,
        "two_processes_gloo": two,
        "ratio_two_over_one": two["median_s"] / one["median_s"],
        "machine": {"cores": cores, "platform": platform.platform(), "torch": torch.__version__,
                    "device": "cpu (no GPU measured)"},
        "date": time.strftime("%Y-%m-%d"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.exists() else {}
    result["sync_bn"] = not args.no_sync_bn
    result["load_average_after"] = os.getloadavg()[0]
    existing[args.optim + ("-no-sync-bn" if args.no_sync_bn else "")] = result
    out.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
