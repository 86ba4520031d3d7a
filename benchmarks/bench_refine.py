"""Discriminator-driven sampling (issue 17): G alone vs G refined by DRS, MH-GAN and DDLS on the 2-D mixtures.

Protocol (PacGAN, Lin et al. 2018; ``saddlepoint.metrics.mode_stats``): for each preset (``configs/ring.yaml``,
``configs/grid.yaml``) and seed 0..4, train with ``saddlepoint.train`` (the preset unchanged but for ``seed``),
then draw 2,500 samples from the EMA generator alone and from each refined sampler over the run's G and D (sampling
seed 1), and report modes covered (≥ 1 sample within 3σ), the high-quality share (within 3σ of the nearest mode)
and KL(high-quality histogram over modes ‖ uniform), with each sampler's cost per kept sample: G and D evaluations
while sampling, the acceptance rate, and the one-time preparation (continued D training, calibration, pilot set)
in G and D evaluations. Rows ``data`` (2,500 samples of the mixture itself: the ceiling of an unbiased sampler,
98.89% high quality in expectation) and the samplers with the run's D as trained (``d_steps=0``) frame them.

Sampler settings (``METHODS``): D is trained further on the frozen EMA G for ``FINETUNE`` (shared by the
samplers through the calibration cache in ``<run>/refine``); DRS with its defaults (γ the 95th percentile of F);
MH with isotonic calibration and k = 100; DDLS with ε = 1e-4 and 300 steps (the default ε = 1e-3 moves too far
on a discriminator this sharp), at σ = 1 (the Langevin sampler of p_data) and σ = 0 (gradient descent on the
latent energy: a sharpened, not an unbiased, sampler).

Goals (issue 17): ring ≥ 99.5% high quality with 8/8 modes and KL ≤ 0.01; grid ≥ 99% with 25/25 and KL ≤ 0.02
(means over the seeds; every seed must cover every mode).

Runs go to ``--work`` (default ``runs/bench-refine``), one process, one torch thread; a finished run and its
per-run results (``refine.json`` in the run directory) are reused, so an interrupted study resumes.

    python benchmarks/bench_refine.py [--quick] [--datasets ring,grid] [--seeds 0,1,2,3,4] [--work DIR]

``--quick`` (about a minute): ring, seed 0, 300 training steps, 200 steps of continued D training, 500 samples;
it checks that every number is finite and writes ``benchmarks/results/refine-quick.json`` only. The full study
writes ``benchmarks/results/refine.json`` and ``benchmarks/results/refine.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
RESULTS = ROOT / "benchmarks" / "results"

N_MODES = {"ring": 8, "grid": 25}
GOALS = {"ring": {"hq": 0.995, "kl": 0.01}, "grid": {"hq": 0.99, "kl": 0.02}}
FINETUNE = {"d_steps": 20_000, "d_lr": 1e-3}
DDLS = {"step_size": 1e-4, "steps": 300}
COLD_DDLS = {"step_size": 3e-4, "steps": 1000, "noise": 0.0}
#: label → (sampler or None for G alone, options)
METHODS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "G": (None, {}),
    "G + DRS": ("drs", dict(FINETUNE)),
    "G + MH": ("mh", dict(FINETUNE)),
    "G + DDLS (σ=1)": ("ddls", {**FINETUNE, **DDLS}),
    "G + DDLS (σ=0)": ("ddls", {**FINETUNE, **DDLS, "noise": 0.0}),
    # colder than p_data: gradient descent on E(z) run to its minima (the goals exceed what data samples score)
    "G + DDLS (σ=0, 1,000 × 3e-4)": ("ddls", {**FINETUNE, **COLD_DDLS}),
    "G + DRS, D as trained": ("drs", {"d_steps": 0}),
    "G + MH, D as trained": ("mh", {"d_steps": 0}),
}
QUICK_FINETUNE = {"d_steps": 200, "d_lr": 1e-3}

#: image part (``--mnist``): short runs, (preset, overrides, metrics, samples)
IMAGE_RUNS: dict[str, tuple[str, dict[str, Any], list[str], int]] = {
    "mnist": ("mnist", {"model": {"name": "dcgan28", "z_dim": 64, "scale": 0.5},
                        "optim": {"name": "adam", "lr": 1e-3, "beta1": 0.5, "beta2": 0.999, "scheme": "alternating"},
                        "train": {"steps": 2000, "batch_size": 32, "ema": 0.999}}, ["fid", "kid"], 2500),
    "stacked-mnist": ("stacked-mnist", {"train": {"steps": 3000, "batch_size": 64, "ema": 0.999}},
                      ["stacked-modes"], 10_000),
}
IMAGE_FINETUNE = {"d_steps": 500, "d_lr": 5e-4, "d_batch": 64, "batch_size": 250}
IMAGE_METHODS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "G": (None, {}),
    "G + DRS": ("drs", dict(IMAGE_FINETUNE)),
    "G + MH": ("mh", {"k": 20, "batch_size": 250, "calib_samples": 2500}),
}


def load_preset(name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())


def train_run(dataset: str, seed: int, work: Path, quick: bool, overrides: dict[str, Any] | None = None,
              name: str | None = None) -> Path:
    """Train the preset with ``seed`` (and ``overrides``, merged per section) into ``work/<name>-<seed>``
    unless a completed run is there."""
    import saddlepoint

    out = work / f"{name or dataset}-{seed}"
    summary = out / "summary.json"
    if summary.is_file() and json.loads(summary.read_text()).get("status") == "completed":
        return out
    cfg = load_preset(dataset)
    cfg["seed"] = seed
    for section, values in (overrides or {}).items():
        cfg[section] = {**cfg.get(section, {}), **values} if isinstance(values, dict) else values
    cfg.setdefault("log", {}).update({"progress": "none", "report": False})
    cfg.setdefault("train", {})["threads"] = 1
    if quick:
        cfg["train"]["steps"] = 300
    return Path(saddlepoint.train(cfg, out=out))


def load_pair(run: Path) -> tuple[Any, Any, Any]:
    """(EMA generator, discriminator, dataset) of ``run/checkpoints/last.pt``, in eval mode."""
    import torch

    from saddlepoint.data import DATASETS
    from saddlepoint.models import build_models

    ckpt = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    cfg = ckpt["config"]
    data = {k: v for k, v in cfg["data"].items() if k != "name" and v is not None}
    dataset = DATASETS.get(cfg["data"]["name"])(**data)
    options = {k: v for k, v in cfg["model"].items() if k not in ("name", "z_dim")}
    G, D = build_models(cfg["model"]["name"], dataset.sample_shape, cfg["model"]["z_dim"], **options)
    G.load_state_dict(ckpt["ema"]["module"] if ckpt.get("ema") else ckpt["G"])
    D.load_state_dict(ckpt["D"])
    return G.eval(), D.eval(), dataset


def evaluate_run(run: Path, n: int, quick: bool, done: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every method of ``METHODS`` (and the data row) on one run: metrics and costs (rows in ``done`` kept)."""
    import torch

    from saddlepoint.metrics import mode_stats
    from saddlepoint.refine import real_sampler, refine

    G, D, dataset = load_pair(run)
    rows: dict[str, Any] = dict(done or {})
    real = dataset.sample(n, torch.Generator().manual_seed(1))
    rows["data"] = {**mode_stats(real, dataset.centers, dataset.std), "g_per_sample": 0.0, "d_per_sample": 0.0}
    for label, (name, options) in METHODS.items():
        if label in rows:
            continue
        t0 = time.perf_counter()
        if name is None:
            with torch.no_grad():
                x = G(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1)))
            cost = {"g_per_sample": 1.0, "d_per_sample": 0.0, "acceptance_rate": 1.0}
        else:
            if quick and options.get("d_steps"):
                options = {**options, **QUICK_FINETUNE}
            result = refine(name, G, D, n, seed=1, options=options, real=real_sampler(dataset),
                            cache_dir=run / "refine", progress=False)
            x, cost = result.samples, result.cost()
        stats = mode_stats(x, dataset.centers, dataset.std)
        rows[label] = {**stats, **cost, "sampler": name, "options": options,
                       "seconds": time.perf_counter() - t0}
        print(f"  {run.name:8s} {label:24s} modes {stats['modes']:2d}  hq {stats['hq']:.4f}  kl {stats['kl']:.4f}  "
              f"G/sample {cost['g_per_sample']:.1f}", flush=True)
    return rows


def evaluate_images(run: Path, metrics: list[str], n: int, quick: bool) -> dict[str, Any]:
    """FID/KID (shipped MNIST classifier's features) or Stacked-MNIST modes of G vs G + DRS and G + MH."""
    import torch

    from saddlepoint.metrics import evaluate_metrics
    from saddlepoint.refine import real_sampler, refine

    G, D, dataset = load_pair(run)
    rows: dict[str, Any] = {}
    for label, (name, options) in IMAGE_METHODS.items():
        t0 = time.perf_counter()
        if name is None:
            with torch.no_grad():
                x = torch.cat([G(z) for z in torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1))
                               .split(500)])
            cost: dict[str, Any] = {"g_per_sample": 1.0, "d_per_sample": 0.0, "acceptance_rate": 1.0}
        else:
            if quick:  # a pipeline check: hardly any continued training, short chains
                options = {**options, "d_steps": min(options.get("d_steps", 0), 20)}
                options.update({"k": 3} if "k" in options else {})
            result = refine(name, G, D, n, seed=1, options=options, real=real_sampler(dataset),
                            cache_dir=run / "refine", progress=False)
            x, cost = result.samples, result.cost()
        values = evaluate_metrics(metrics, x.clamp(-1, 1), dataset)
        rows[label] = {**values, **cost, "sampler": name, "options": options, "seconds": time.perf_counter() - t0}
        shown = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
        print(f"  {run.name:16s} {label:10s} {shown}  G/sample {cost['g_per_sample']:.1f}", flush=True)
    return rows


def image_markdown(images: dict[str, Any]) -> str:
    lines = ["### MNIST and Stacked MNIST (short runs, one seed)", "",
             "MNIST: the default job's model (DCGAN-28 ×0.5, z 64, batch 32, alternating Adam 1e-3, EMA 0.999) for "
             f"{IMAGE_RUNS['mnist'][1]['train']['steps']:,} steps on the bundled t10k digits; FID and KID (plain "
             f"MMD², not ×1000) in the shipped MNIST classifier's features, {IMAGE_RUNS['mnist'][3]:,} samples "
             "against the 10,000 "
             "reference digits. Stacked MNIST: `configs/stacked-mnist.yaml` for "
             f"{IMAGE_RUNS['stacked-mnist'][1]['train']['steps']:,} steps; modes and KL over "
             f"{IMAGE_RUNS['stacked-mnist'][3]:,} samples (KL floor of a perfect sampler ≈ 0.05 at 10,000). "
             f"DRS: D trained further for {IMAGE_FINETUNE['d_steps']} steps (lr {IMAGE_FINETUNE['d_lr']:g}, batch "
             f"{IMAGE_FINETUNE['d_batch']}), γ the 95th percentile; MH: the run's D with isotonic calibration, "
             f"k = {IMAGE_METHODS['G + MH'][1]['k']}.", ""]
    for name, rows in images.items():
        keys = [k for k in next(iter(rows.values())) if k in ("fid", "kid", "modes", "kl")]
        lines += [f"**{name}**", "", "| method | " + " | ".join(keys) + " | acceptance | G evals/sample | "
                  "D evals/sample |", "|---" * (len(keys) + 4) + "|"]
        for label, r in rows.items():
            cells = [f"{r[k]:.4g}" for k in keys]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {r['acceptance_rate']:.3f} | "
                         f"{r['g_per_sample']:.1f} | {r['d_per_sample']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def setup_evals(name: str | None, options: dict[str, Any]) -> tuple[int, int]:
    """(G, D) evaluations of a sampler's one-time preparation from scratch (continued D training, calibration,
    pilot set); the study shares D's continued training between samplers, so the per-run counts vary."""
    if name is None:
        return 0, 0
    from saddlepoint.refine import check_options

    o = check_options(name, options)
    g, d = o["d_steps"] * o["d_batch"], 2 * o["d_steps"] * o["d_batch"]
    if o["calibration"] != "none":
        g, d = g + o["calib_samples"], d + 2 * o["calib_samples"]
    if name == "drs":
        g, d = g + o["pilot"], d + o["pilot"]
    return g, d


def mean_se(values: list[float]) -> tuple[float, float]:
    m = statistics.fmean(values)
    return m, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0)


def aggregate(per_run: dict[str, dict[str, Any]], dataset: str) -> dict[str, Any]:
    """Mean ± s.e. over seeds for every method; whether the issue's goal is met."""
    labels = list(next(iter(per_run.values())))
    table = {}
    for label in labels:
        rows = [r[label] for r in per_run.values()]
        entry = {key: mean_se([float(r[key]) for r in rows]) for key in ("modes", "hq", "kl")}
        for key in ("g_per_sample", "d_per_sample", "acceptance_rate", "setup_g_evals", "setup_d_evals", "seconds"):
            if all(key in r for r in rows):
                entry[key] = statistics.fmean(float(r[key]) for r in rows)
        goal = GOALS[dataset]
        entry["all_modes_every_seed"] = all(int(r["modes"]) == N_MODES[dataset] for r in rows)
        entry["goal_met"] = bool(entry["all_modes_every_seed"] and entry["hq"][0] >= goal["hq"]
                                 and entry["kl"][0] <= goal["kl"])
        table[label] = entry
    return table


def markdown(results: dict[str, Any]) -> str:
    lines = ["## Discriminator-driven sampling on the 2-D mixtures (issue 17)", "",
             f"Measured {results['date']} on {results['machine']}, torch {results['torch']}, one torch thread, "
             f"one process at a time (machine shared with other jobs: wall times are upper bounds). Reproduce with "
             f"`python benchmarks/bench_refine.py` (`--quick` for a one-minute sanity run).", "",
             "Protocol: the presets `configs/ring.yaml` and `configs/grid.yaml`, seeds "
             f"{', '.join(map(str, results['seeds']))}; 2,500 samples per method (sampling seed 1) from the EMA "
             "generator; PacGAN mode statistics (3σ rule). D is trained further on the frozen G for "
             f"{FINETUNE['d_steps']:,} Adam steps (lr {FINETUNE['d_lr']:g} decaying linearly to 0, batch 256) "
             "before DRS, MH and DDLS (one training per run, shared); DRS: γ = 95th percentile of F; MH: isotonic "
             f"calibration on 5,000 + 5,000 held-out samples, k = 100, chains started at a real sample; DDLS: "
             f"ε = {DDLS['step_size']:g}, {DDLS['steps']} steps; the cold row runs σ = 0 for "
             f"{COLD_DDLS['steps']:,} steps of ε = {COLD_DDLS['step_size']:g}: gradient descent on E(z) to its minima, "
             "a sampler *colder* than p_data "
             "(the data row is what exact samples of p_data score, 98.9% high quality = 1 − e^(−4.5) under the 3σ "
             "rule: a high-quality goal above it is met only by a sampler sharper than the data). Mean ± standard "
             "error over seeds. Cost: G and D "
             "evaluations per kept sample while sampling (a DDLS step is a forward and a backward pass through "
             "both); setup: the one-time continued training, calibration and pilot set from scratch, in D "
             "evaluations (saved in the run directory and reused; the study trains D further once per run "
             "and shares it between the samplers).", ""]
    for dataset, table in results["tables"].items():
        goal = GOALS[dataset]
        lines += [f"### {dataset.capitalize()} ({N_MODES[dataset]} modes) — goal ≥ {goal['hq']:.1%} high quality, "
                  f"{N_MODES[dataset]}/{N_MODES[dataset]} modes, KL ≤ {goal['kl']}", "",
                  "| method | modes | high quality | KL | acceptance | G evals/sample | D evals/sample "
                  "| setup D evals | goal |", "|---|---|---|---|---|---|---|---|---|"]
        for label, e in table.items():
            verdict = "—" if label == "data" else ("met" if e["goal_met"] else "missed")
            acc = f"{e['acceptance_rate']:.3f}" if "acceptance_rate" in e else "—"
            setup = f"{setup_evals(*METHODS[label])[1]:,}" if label in METHODS else "—"
            lines.append(f"| {label} | {e['modes'][0]:.2f} ± {e['modes'][1]:.2f} | {100 * e['hq'][0]:.2f} ± "
                         f"{100 * e['hq'][1]:.2f}% | {e['kl'][0]:.4f} ± {e['kl'][1]:.4f} | {acc} | "
                         f"{e['g_per_sample']:.1f} | {e['d_per_sample']:.1f} | {setup} | "
                         f"{verdict} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--datasets", default="ring,grid")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-refine")
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--fresh", action="store_true", help="re-evaluate finished runs")
    parser.add_argument("--mnist", action="store_true", help="also the MNIST and Stacked-MNIST part")
    parser.add_argument("--only-mnist", action="store_true", help="only the MNIST and Stacked-MNIST part")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    datasets = ["ring"] if args.quick else args.datasets.split(",")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    n = 500 if args.quick else args.samples
    work = args.work / "quick" if args.quick else args.work
    tables, runs, images = {}, {}, {}
    if args.only_mnist:
        datasets = []
    if args.mnist or args.only_mnist:
        for name, (preset, overrides, metrics, count) in IMAGE_RUNS.items():
            if args.quick:
                overrides = {**overrides, "train": {**overrides.get("train", {}), "steps": 20}}
                count = 300
            overrides = {**overrides, "eval": {"metrics": metrics, "samples": min(count, 2500)}}
            run = train_run(preset, 0, work, False, overrides, name=name)
            cached = run / "refine.json"
            if cached.is_file() and not args.fresh and not args.quick:
                images[name] = json.loads(cached.read_text())
            else:
                images[name] = evaluate_images(run, metrics, count, args.quick)
                cached.write_text(json.dumps(images[name], indent=1, default=str))
    for dataset in datasets:
        per_run = {}
        for seed in seeds:
            run = train_run(dataset, seed, work, args.quick)
            cached = run / "refine.json"
            done = json.loads(cached.read_text()) if cached.is_file() and not args.fresh and not args.quick else {}
            per_run[run.name] = evaluate_run(run, n, args.quick, done)  # only the methods not measured yet
            per_run[run.name] = {label: per_run[run.name][label] for label in ["data", *METHODS]}
            cached.write_text(json.dumps(per_run[run.name], indent=1, default=str))
        runs[dataset] = per_run
        tables[dataset] = aggregate(per_run, dataset)
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPU cores ({platform.machine()})",
               "torch": torch.__version__, "seeds": seeds, "samples": n, "finetune": FINETUNE,
               "methods": {k: {"sampler": v[0], "options": v[1]} for k, v in METHODS.items()},
               "tables": tables, "runs": runs, "images": images}
    if args.quick:
        for dataset, table in tables.items():
            for label, e in table.items():
                assert all(math.isfinite(e[k][0]) for k in ("modes", "hq", "kl")), (dataset, label)
                assert 0 <= e["hq"][0] <= 1 and 0 <= e["modes"][0] <= N_MODES[dataset], (dataset, label)
        (RESULTS / "refine-quick.json").write_text(json.dumps(results, indent=1, default=str))
        print("quick check passed")
        return 0
    path = RESULTS / "refine.json"
    if path.is_file():  # keep the parts not run this time
        previous = json.loads(path.read_text())
        for part in ("tables", "runs", "images"):
            results[part] = {**previous.get(part, {}), **results[part]}
        if not tables:
            results["seeds"] = previous.get("seeds", seeds)
    path.write_text(json.dumps(results, indent=1, default=str))
    text = markdown(results) + ("\n" + image_markdown(results["images"]) if results["images"] else "")
    (RESULTS / "refine.md").write_text(text + "\n")
    print(text)
    if tables:  # the figures of docs/benchmarks.md and docs/sampling.md
        from plot_refine import main as plot

        plot(["--work", str(work)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
