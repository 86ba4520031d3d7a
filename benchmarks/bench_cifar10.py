"""CIFAR-10 study (issue 18): DCGAN-32 and SNGAN's ResNet-32 on the CIFAR-10 test JPEGs, with and without
DiffAugment, NS and hinge losses, Adam and consensus optimization (the best game-aware method of the 2-D
studies), each run at the same stated compute budget; Inception FID of the EMA generator (``--samples``
samples against the 10,000 real images, the TF1 convention of the reference tools) with its time.

Every run trains for the number of steps that fits ``--budget`` CPU-minutes (threads × wall minutes): the
step time of each configuration is measured first on a few steps (after warm-up), so runs are compared at equal
compute, and also listed with their steps. Finished runs are reused from ``--work``; results go to
``benchmarks/results/cifar10.json`` and ``.md`` (``--report`` rewrites the ``.md`` alone) and the sample grids to
``docs/img/cifar10/``.

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
IMAGES = ROOT / "docs" / "img"
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


def fid_spread(run: Path, samples: int, real: int, cache: Path, draws: int = 8) -> float | None:
    """Standard deviation of the FID over ``draws`` bootstrap resamples of both sides' cached features: the FID's
    own sampling noise at these sample counts (not the seed-to-seed noise of training). None when either side's
    features are not in the cache (no Inception pass is ever run here)."""
    import numpy as np
    import torch

    from saddlepoint.metrics.frechet import frechet_distance
    from saddlepoint.metrics.inception import inception_extractor
    from saddlepoint.metrics.standalone import load_side
    from saddlepoint.metrics.stats import REAL_STATS, feature_stats, images_digest, stats_key
    from saddlepoint.training import sample

    if not (run / "checkpoints").is_dir() or real != 10_000:
        return None
    extractor = inception_extractor()
    feats = []
    for images in (sample(run, n=samples, seed=1), load_side(CIFAR).images):
        key = stats_key("fid-input", len(images), images_digest(images), extractor, len(images), "all")
        stats = REAL_STATS.get(key, cache)
        if stats is None or len(stats.features) == 0:
            return None
        feats.append(np.asarray(stats.features, dtype=np.float64))
    rng = np.random.default_rng(0)
    fids = []
    for _ in range(draws):
        a, b = (f[rng.integers(0, len(f), len(f))] for f in feats)
        fids.append(frechet_distance(*feature_stats(torch.from_numpy(a)), *feature_stats(torch.from_numpy(b))))
    return float(np.std(fids, ddof=1))


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
    ap.add_argument("--report", action="store_true", help="only write the markdown report from the results file")
    args = ap.parse_args()
    if args.report:
        out = args.out or RESULTS / "cifar10.json"
        write_report(json.loads(out.read_text()), out, args.work)
        return
    if args.quick:
        args.budget, args.samples, args.real, args.models, args.losses = 0.2, 50, 50, "dcgan32", "hinge"
        args.optimizers, args.probe_steps, args.work = "adam", 2, args.work / "quick"
    out = args.out or RESULTS / ("cifar10-quick.json" if args.quick else "cifar10.json")
    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "stats-cache"
    record = json.loads(out.read_text()) if out.exists() and not args.quick else {}
    rows: dict[str, Any] = record.get("runs", {})
    # every invocation that added runs, in order (a study spans several: one per model's own grid)
    commands = record.get("commands", [record["command"]] if "command" in record else [])
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
            images = IMAGES / out.stem  # docs/img/cifar10 (CPU study), docs/img/cifar10-gpu (GPU script)
            images.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run / "samples" / "final.png", images / f"{label.replace(' ', '-')}.png")
        print(f"{label}: {steps} steps ({per_step:.3f} s/step), train {train_s / 60:.1f} min, FID {fid:.2f} "
              f"({fid_s:.0f} s)", flush=True)
        result = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "torch": torch.__version__,
                  "threads": args.threads, "device": args.device, "budget_cpu_minutes": args.budget,
                  "steps": args.steps, "samples": args.samples, "real": args.real, "batch": args.batch,
                  "commands": commands + ([sys.argv] if sys.argv not in commands else []),
                  "runs": rows}
        out.write_text(json.dumps(result, indent=1))  # after every run: an interrupted study loses nothing
    if out.exists():
        result = json.loads(out.read_text())
        print(markdown(result))
        if not args.quick:
            write_report(result, out, args.work)


def markdown(result: dict[str, Any], spread: dict[str, float | None] | None = None) -> str:
    spread = spread or {}
    lines = [f"CIFAR-10 test JPEGs, {result['device']}, {result['threads']} threads, batch {result['batch']}, "
             f"budget {result['budget_cpu_minutes']:g} CPU-minutes per run; Inception FID of {result['samples']:,} "
             f"EMA samples vs {result.get('real', 10_000):,} real images (TF1 convention).", "",
             "| model | DiffAugment | loss | optimizer | steps | s/step | train min | CPU min | FID | FID time (s) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(result["runs"].values(), key=lambda r: r["fid"]):
        sd = spread.get(f"{r['model']} {r['augment']} {r['loss']} {r['optimizer']} seed{r['seed']}")
        fid = f"{r['fid']:.2f}" + (f" ± {sd:.1f}" if sd is not None else "")
        lines.append(f"| {r['model']} | {r['augment']} | {r['loss']} | {r['optimizer']} | {r['steps']:,} | "
                     f"{r['seconds_per_step']:.3f} | {r['train_seconds'] / 60:.1f} | {r['cpu_minutes']:.1f} | "
                     f"{fid} | {r['fid_seconds']:.0f} |")
    return "\n".join(lines)


#: published CIFAR-10 FIDs (50,000 training images, GPU budgets, 50,000 or 10,000 samples vs the training set)
PUBLISHED = [
    ("SNGAN ResNet, hinge, spectral norm (Miyato et al. 2018)", "21.7"),
    ("WGAN-GP ResNet (as reported by Heusel et al. 2017, TTUR paper: original / TTUR)", "29.3 / 24.8"),
    ("DCGAN (as reported by Heusel et al. 2017: original / TTUR)", "37.7 / 36.9"),
]


def write_report(result: dict[str, Any], out: Path, work: Path) -> None:
    """``results/<out>.md``: protocol, table, effects of each lever, sample grids, published figures; for
    docs/benchmarks.md (``report.py``). The FIDs' bootstrap spread is computed once per run from the cached
    features and kept in ``results/<out>-spread.json``."""
    runs = result["runs"]
    commands = " then ".join(f"`{' '.join(['python', 'benchmarks/bench_cifar10.py', *argv[1:]])}`"
                             for argv in result.get("commands", [result.get("command", [])]))
    spread_path = out.with_name(f"{out.stem}-spread.json")
    spread = json.loads(spread_path.read_text()) if spread_path.exists() else {}
    for label, r in runs.items():
        if spread.get(label) is None:
            spread[label] = fid_spread(work / label.replace(" ", "-"), r["samples"], r.get("real", 10_000),
                                       work / "stats-cache")
    spread_path.write_text(json.dumps(spread, indent=1) + "\n")
    budget = result["budget_cpu_minutes"]
    resnets = [r for r in runs.values() if r["model"] == "sngan-resnet32"]
    resnet = (f"SNGAN's ResNet-32 takes ≈ {resnets[0]['seconds_per_step']:.1f} s per generator step here (5 D steps "
              f"each, {result['threads']} threads), {resnets[0]['steps']} generator steps in {budget:g} CPU-minutes: "
              "it runs only hinge + Adam, with and without DiffAugment, to show where it stands at equal compute; "
              "its levers are left to the GPU script." if resnets else "SNGAN's ResNet-32 has not run yet.")
    best_label, best = min(runs.items(), key=lambda kv: kv[1]["fid"])
    lines = ["## CIFAR-10 study (issue 18)", "", markdown(result, spread), "",
             "± : the standard deviation of the FID over 8 bootstrap resamples of both sides' Inception features, "
             "the FID's own sampling noise at 5,000 vs 10,000 images (training's seed-to-seed noise comes on top; "
             "one seed per configuration).", "",
             f"Protocol: {commands} (resumable; "
             "the results file is the record). Data: the CIFAR-10 test set as 10,000 JPEGs (`data.name: folder`), "
             "scaled to [−1, 1]. Each model with its paper's settings: DCGAN-32 (Radford et al. 2016; Adam 2e-4, "
             "β 0.5/0.999, one D step per G step) and SNGAN's ResNet-32 (Miyato et al. 2018, Table 4 setting C: "
             "Adam 2e-4, β 0/0.9, 5 D steps per G step, spectral norm in D). Consensus optimization (Mescheder "
             "et al. 2017) on Adam with γ 1, the best game-aware method of the 2-D studies. DiffAugment (Zhao "
             "et al. 2020): colour, translation, cutout on every image D sees. EMA generator (0.999). Each "
             "configuration's seconds per step are measured before any run (a few steps after warm-up, "
             "`runs/bench-cifar10/step-seconds.json`); every run of a model and optimizer then trains the same "
             "steps, those that fit the budget at the mean of its probes. 'cpu min' is the run's own CPU time. "
             "FID: the TF1 Inception convention of the reference tools (docs/metrics.md), the real statistics "
             "computed once and cached; its time is the FID's wall time (sampling + features; the first run in a "
             "work folder also pays the 10,000 real images' statistics, ≈ 33 min here, that the others reuse).", "",
             f"Departures from the issue's design, for this CPU: the budget is {budget:g} CPU-minutes per run (the "
             "issue allows up to 60; each run's FID alone takes 11–17 minutes of wall time here, so the study spans "
             f"sessions as it is). {resnet} One seed per configuration.", "",
             f"Preset: `configs/cifar10.yaml` takes the lowest-FID row, {best_label} (FID {best['fid']:.1f}), "
             f"for 10,000 steps instead of the study's {best['steps']:,}; one seed and a short budget chose it.", ""]
    pairs = [("augment", "none", "diffaugment", "DiffAugment"), ("loss", "ns", "hinge", "hinge instead of NS"),
             ("optimizer", "adam", "consensus", "consensus instead of Adam")]
    effect_lines = []
    for key, a, b, title in pairs:
        diffs = []
        for r in runs.values():
            if r[key] != a:
                continue
            twin = next((t for t in runs.values() if t[key] == b and all(
                t[k] == r[k] for k in ("model", "augment", "loss", "optimizer", "seed") if k != key)), None)
            if twin is not None:
                diffs.append((r, twin["fid"] - r["fid"]))
        if diffs:
            others = [k for k in ("augment", "loss", "optimizer") if k != key]
            listed = "; ".join(f"{r['model']} {'/'.join(str(r[k]) for k in others)} {d:+.1f}" for r, d in diffs)
            effect_lines.append(f"- {title}: FID change {listed} (one seed each; compare with the ± of the table).")
    if effect_lines:
        lines += ["Effect of each lever, run against its twin (negative is better):", "", *effect_lines, ""]
    folder = out.stem
    lines += ["Samples (EMA generator, the run's last step; 64 images each):", ""]
    for label in sorted(runs, key=lambda k: runs[k]["fid"]):
        lines += [f"![{label} (FID {runs[label]['fid']:.1f})](img/{folder}/{label.replace(' ', '-')}.png)", ""]
    lines += ["Published CIFAR-10 FIDs, for orientation only: they train on the 50,000 training images for "
              "50k–100k generator steps on GPUs and compare 50,000 (or 10,000) samples with the training set; here "
              "the 10,000 test images are the data and the reference, the budget is minutes of CPU, and 5,000 "
              "samples are scored (FID falls as the sample count grows). They do not compare.", "",
              "| published | FID |", "|---|---|", *[f"| {a} | {b} |" for a, b in PUBLISHED], "",
              "What ran where: this study ran on the project's 2-core CPU. `benchmarks/gpu/cifar10.sh` runs the same "
              "grid at the papers' budgets on a CUDA GPU; no CUDA machine was available, so it has not run.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
