"""CIFAR-10 study (issue 18): DCGAN-32 and SNGAN's ResNet-32 on the CIFAR-10 test JPEGs, with and without
DiffAugment, NS and hinge losses, Adam and consensus optimization (the best game-aware method of the 2-D
studies), each run at the same stated compute budget; Inception FID of the EMA generator (``--samples``
samples against the 10,000 real images, the TF1 convention of the reference tools) with its time.

Every run trains for the number of steps that fits ``--budget`` CPU-minutes (threads × wall minutes): the
step time of each configuration is measured first on a few steps (after warm-up), so runs are compared at equal
compute, and also listed with their steps. Finished runs are reused from ``--work``; results go to
``benchmarks/results/cifar10.json`` and ``.md`` and the sample grids to ``docs/img/cifar10/``.

    python benchmarks/bench_cifar10.py                                 # the whole study: 16 runs × --budget
    python benchmarks/bench_cifar10.py --budget 10 --samples 2000      # a smaller one: say so beside its numbers
    python benchmarks/bench_cifar10.py --quick                         # a pipeline check (minutes)
    python benchmarks/bench_cifar10.py --device cuda --steps 100000    # the papers' budgets (benchmarks/gpu/)

Published CIFAR-10 FIDs (SNGAN ResNet 21.7, Miyato et al. 2018; WGAN-GP ResNet ≈ 29, DCGAN ≈ 37) train on the
50,000 training images for 50k–100k generator steps on GPUs and measure 50,000 (or 10,000) samples against the
training set: they orient, they do not compare (fewer, test-set images here; far fewer steps; fewer samples,
and FID falls with the sample count).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "img" / "cifar10"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-test-jpeg"

#: per model, the settings of its paper (DCGAN: Radford et al. 2016; SNGAN: Miyato et al. 2018, Table 4 setting C)
MODELS: dict[str, dict[str, Any]] = {
    "dcgan32": {"model": {"name": "dcgan32", "z_dim": 100, "scale": 1.0},
                "optim": {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999}, "train": {"n_critic": 1}},
    "sngan-resnet32": {"model": {"name": "sngan-resnet32", "z_dim": 128, "scale": 1.0},
                       "optim": {"lr": 2e-4, "beta1": 0.0, "beta2": 0.9}, "train": {"n_critic": 5}},
}
#: consensus optimization on the Adam rule (the 2-D presets' best game-aware method), γ of the paper
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adam": {"name": "adam", "scheme": "alternating"},
    "consensus": {"name": "consensus", "base": "adam", "gamma": 1.0},
}
AUGMENT = {"none": None, "diffaugment": "color,translation,cutout"}
LOSSES = ("hinge", "ns")


def config(model: str, loss: str, optim: str, augment: str, steps: int, device: str, threads: int, seed: int,
           batch: int) -> dict[str, Any]:
    m = MODELS[model]
    optim_cfg = {**OPTIMIZERS[optim], **m["optim"]}
    if optim == "consensus":
        optim_cfg.pop("scheme", None)
    return {
        "seed": seed,
        "data": {"name": "folder", "root": str(CIFAR), "channels": 3},
        "model": dict(m["model"]),
        "loss": {"name": loss},
        "optim": optim_cfg,
        "train": {"steps": steps, "batch_size": batch, "ema": 0.999, "device": device, "threads": threads,
                  "augment": AUGMENT[augment], **m["train"]},
        "eval": {"metrics": []},  # the study measures FID itself, once, at the end
        "log": {"every": max(1, steps // 20), "progress": "none", "report": False},
        "checkpoint": {"every": max(1, steps // 4)},
    }


def step_seconds(cfg: dict[str, Any], work: Path, probe_steps: int) -> float:
    """Seconds per training step of this configuration: a short run logging every step, timed between the end of
    its second step (loading and warm-up before) and its last, from its own ``metrics.jsonl``."""
    import saddlepoint

    probe = json.loads(json.dumps(cfg))
    probe["train"]["steps"] = 2 + probe_steps
    probe["log"]["every"] = 1
    out = work / "probe"
    shutil.rmtree(out, ignore_errors=True)
    saddlepoint.train(probe, out=out)
    times = {r["step"]: r["time"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if "time" in r and not r.get("final")}
    shutil.rmtree(out, ignore_errors=True)
    return (times[2 + probe_steps] - times[2]) / probe_steps


def fid_of(run: Path, samples: int, real: int, cache: Path, device: str) -> tuple[float, float]:
    """(Inception FID of the run's EMA generator vs ``real`` real images — all 10,000 unless fewer are asked for, then
    a seed-0 random subset —, seconds it took; the real statistics are cached, so only the first run pays them)."""
    import torch

    from saddlepoint.metrics.standalone import Side, compare, load_side
    from saddlepoint.training import sample

    t0 = time.perf_counter()
    fake = Side(str(run), images=sample(run, n=samples, seed=1))
    reference = load_side(CIFAR)
    if real < len(reference.images):
        pick = torch.randperm(len(reference.images), generator=torch.Generator().manual_seed(0))[:real]
        reference = Side(f"{CIFAR} ({real} of them)", images=reference.images[pick.sort().values])
    fid = compare(fake, reference, cache_dir=cache, device=device)["fid"]
    return fid, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="CPU-minutes per run (threads × wall minutes)")
    ap.add_argument("--steps", type=int, help="a fixed number of steps instead of the budget (GPU runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--samples", type=int, default=5000, help="generated samples for the FID")
    ap.add_argument("--real", type=int, default=10_000, help="real images for the FID (a seeded subset if < 10,000)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--losses", default=",".join(LOSSES))
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    ap.add_argument("--augment", default=",".join(AUGMENT))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--probe-steps", type=int, default=5)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-cifar10")
    ap.add_argument("--quick", action="store_true", help="two tiny runs and a 100-sample FID: a pipeline check")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.quick:
        args.budget, args.samples, args.real, args.models, args.losses = 0.2, 50, 50, "dcgan32", "hinge"
        args.optimizers, args.probe_steps, args.work = "adam", 2, args.work / "quick"
    out = args.out or RESULTS / ("cifar10-quick.json" if args.quick else "cifar10.json")
    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "stats-cache"
    rows: dict[str, Any] = json.loads(out.read_text())["runs"] if out.exists() and not args.quick else {}
    # Adam before consensus, hinge before NS: a study cut short (it spans sessions on a CPU) has its baselines first
    combos = [(model, augment, loss, optim, seed) for optim, loss, augment, model, seed in itertools.product(
        args.optimizers.split(","), args.losses.split(","), args.augment.split(","), args.models.split(","),
        [int(s) for s in args.seeds.split(",")])]
    # phase 1: the step time of every configuration, measured before any run (one machine state for all), kept
    probes_path = args.work / "step-seconds.json"
    probes: dict[str, float] = json.loads(probes_path.read_text()) if probes_path.exists() else {}
    for model, augment, loss, optim, _ in combos:
        key = f"{model} {augment} {loss} {optim} {args.device} {args.threads} {args.batch}"
        if key not in probes and not args.steps:
            base = config(model, loss, optim, augment, 1, args.device, args.threads, 0, args.batch)
            probes[key] = step_seconds(base, args.work, args.probe_steps)
            probes_path.write_text(json.dumps(probes, indent=1))
            print(f"{key}: {probes[key]:.3f} s/step", flush=True)
    # phase 2: the runs, each for the steps that fit the budget at its measured step time
    for model, augment, loss, optim, seed in combos:
        label = f"{model} {augment} {loss} {optim} seed{seed}"
        run = args.work / label.replace(" ", "-")
        if label in rows:  # the results file is the record: a run finished in an earlier session is not redone
            print(f"{label}: done (FID {rows[label]['fid']:.2f})", flush=True)
            continue
        # one step time per model and optimizer, the mean of its probes over the loss and augmentation variants: the
        # variants differ by a few percent, less than a 5-step probe's noise, and then run the very same step count
        same = [v for k, v in probes.items() if k.split()[0] == model and k.split()[3] == optim
                and k.split()[4:] == [args.device, str(args.threads), str(args.batch)]]
        per_step = sum(same) / len(same) if same else 0.0
        steps = args.steps or max(1, int(args.budget * 60 / args.threads / per_step))
        cfg = config(model, loss, optim, augment, steps, args.device, args.threads, seed, args.batch)
        import saddlepoint

        shutil.rmtree(run, ignore_errors=True)
        t0, cpu0 = time.perf_counter(), time.process_time()
        saddlepoint.train(cfg, out=run)
        train_s, train_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        fid, fid_s = fid_of(run, args.samples, args.real, cache, args.device)
        rows[label] = {"model": model, "augment": augment, "loss": loss, "optimizer": optim, "seed": seed,
                       "steps": steps, "seconds_per_step": per_step, "train_seconds": train_s,
                       "cpu_minutes": train_cpu / 60, "fid": fid, "fid_seconds": fid_s,
                       "samples": args.samples, "real": args.real}
        if not args.quick:
            IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run / "samples" / "final.png", IMAGES / f"{label.replace(' ', '-')}.png")
        print(f"{label}: {steps} steps ({per_step:.3f} s/step), train {train_s / 60:.1f} min, FID {fid:.2f} "
              f"({fid_s:.0f} s)", flush=True)
        result = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "torch": torch.__version__,
                  "threads": args.threads, "device": args.device, "budget_cpu_minutes": args.budget,
                  "steps": args.steps, "samples": args.samples, "real": args.real, "batch": args.batch,
                  "command": sys.argv,
                  "runs": rows}
        out.write_text(json.dumps(result, indent=1))  # after every run: an interrupted study loses nothing
    print(markdown(json.loads(out.read_text())))


def markdown(result: dict[str, Any]) -> str:
    lines = [f"CIFAR-10 test JPEGs, {result['device']}, {result['threads']} threads, batch {result['batch']}, "
             f"budget {result['budget_cpu_minutes']:g} CPU-minutes per run; Inception FID of {result['samples']:,} "
             f"EMA samples vs {result.get('real', 10_000):,} real images (TF1 convention).", "",
             "| model | DiffAugment | loss | optimizer | steps | s/step | train min | FID | FID time (s) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in sorted(result["runs"].values(), key=lambda r: r["fid"]):
        lines.append(f"| {r['model']} | {r['augment']} | {r['loss']} | {r['optimizer']} | {r['steps']:,} | "
                     f"{r['seconds_per_step']:.3f} | {r['train_seconds'] / 60:.1f} | {r['fid']:.2f} | "
                     f"{r['fid_seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
