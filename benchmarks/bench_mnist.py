"""Image-GAN quality studies (issue 7, parts 5 and 6): Stacked-MNIST mode coverage, MNIST FID/KID per loss,
and the convergence of SGD, heavy-ball momentum, Nesterov (the seed project's NAG) and Adam.

Every configuration is one ``saddlepoint train`` run (a subprocess, ``train.threads`` = 1, ``OMP_NUM_THREADS``
= 1, one run at a time) in ``<runs>/<name>``; the script then reads each run's ``metrics.jsonl`` and
``summary.json`` and writes ``benchmarks/results/mnist.json`` (``mnist-quick.json`` with ``--quick``), the
markdown section ``benchmarks/results/mnist.md`` and the plots ``docs/img/mnist-*.png`` (only the full run
writes the markdown and the plots). A finished run directory (``summary.json`` with status ``completed`` and the
same resolved settings) is reused, so an interrupted study resumes where it stopped; ``--fresh`` retrains.

Protocol (full run):

* **MNIST (part 6)**: the default job's model and budget — ``mnist-t10k`` (the bundled 10,000 test digits),
  DCGAN-28 at ``model.scale`` 0.5, z 64, batch 32, 3,500 steps, alternating updates (D first), EMA 0.999 of G,
  seed 0. FID and KID (``eval.metrics=[fid,kid]``) in the shipped MNIST-classifier features (128-d), 2,500
  generated samples from the EMA generator against all 10,000 reference digits, every 500 steps
  (``eval.every``) and at the end; KID with 100 subsets of 1,000. Losses ``ns``, ``wgan`` + ``gp`` (weight 10),
  ``hinge``, ``lsgan``, all with Adam (lr 1e-3, β 0.5/0.999, n_critic 1: the default job's optimizer, unchanged
  for every loss). Optimizers on the NS loss: ``adam`` (the ``ns`` run), ``sgd`` lr 0.05, ``momentum`` and
  ``nesterov`` lr 0.005 with β 0.9 (the same effective step η/(1−β) = 0.05 as SGD), each for 2,000 steps (compute:
  the machine was shared during the measurements); the Adam curve is the ``ns`` run's, whose first 2,000 steps are
  the same trajectory (no schedule depends on ``train.steps``). One seed per configuration.
  The real-versus-real floor is quoted from ``benchmarks/results/metrics.json`` (``bench_metrics.py``).
* **Stacked MNIST (part 5)**: ``configs/stacked-mnist.yaml`` (DCGAN-28 on 3 channels, NS, alternating Adam 5e-4,
  β 0.5/0.999, EMA 0.999) at a cheaper size — ``model.scale`` 0.5, batch 64, 6,000 steps; the
  ``stacked-modes`` metric (each channel classified by the shipped classifier; modes of 1,000 among
  **26,000** samples; KL(histogram ‖ uniform), natural log) every 1,500 steps; and the same configuration for
  20,000 steps (what fits 30 CPU-minutes on an idle core) at the preset's lr and at 1e-3, evaluated every 2,000.
  CPU-minutes = wall time of the whole process (training, evaluations, start-up) × threads (1); the CPU time
  the process used (``getrusage``) is recorded too.

``--quick`` (≤ 2 minutes on one core): 150 MNIST steps for ``ns`` and ``hinge`` with Adam and for ``sgd``,
1,000 evaluation samples every 50 steps; 100 Stacked-MNIST steps (batch 32) scored on 5,000 samples. Its
numbers only check that the pipeline is sane (finite positive FID, modes in [0, 1000]).

    python benchmarks/bench_mnist.py [--quick] [--runs runs/bench-mnist] [--fresh] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"

MNIST_COMMON = ["train.threads=1", "log.progress=none", "log.every=100", "checkpoint.every=0",
                "log.report=false", "eval.metrics=[fid,kid]", "seed=0"]
STACKED_COMMON = ["train.threads=1", "log.progress=none", "log.every=100", "checkpoint.every=0",
                  "log.report=false", "seed=0"]

SGD_LR, MOMENTUM_LR, MOMENTUM = 0.05, 0.005, 0.9
OPT_STEPS = 2000  # length of the SGD / momentum / Nesterov convergence runs (full study)


def specs(quick: bool) -> list[dict[str, Any]]:
    """The runs of the study: name, part, the config file (or None: the defaults) and the --set overrides."""
    if quick:
        mnist = ["train.steps=150", "eval.every=50", "eval.samples=1000"]
        stacked = ["train.steps=100", "model.scale=0.5", "train.batch_size=32", "eval.samples=5000"]
    else:
        mnist = ["train.steps=3500", "eval.every=500", "eval.samples=2500"]
        stacked = ["train.steps=6000", "model.scale=0.5", "train.batch_size=64", "eval.every=1500",
                   "eval.samples=26000"]
    out: list[dict[str, Any]] = []

    def add(name, part, config, sets, **meta):
        out.append({"name": name, "part": part, "config": config, "set": sets, **meta})

    base = MNIST_COMMON + mnist
    add("mnist-ns-adam", "mnist", None, base + ["loss.name=ns", "optim.name=adam"], loss="ns", optim="adam")
    add("mnist-hinge-adam", "mnist", None, base + ["loss.name=hinge", "optim.name=adam"], loss="hinge", optim="adam")
    if not quick:
        add("mnist-lsgan-adam", "mnist", None, base + ["loss.name=lsgan", "optim.name=adam"],
            loss="lsgan", optim="adam")
        add("mnist-wgangp-adam", "mnist", None, base + ["loss.name=wgan", "loss.penalty=[gp]", "optim.name=adam"],
            loss="wgan+gp", optim="adam")
    # the convergence runs stop at OPT_STEPS (the Adam curve is the ns run's: no schedule depends on
    # train.steps, so its first OPT_STEPS steps are the same trajectory)
    opt = [] if quick else [f"train.steps={OPT_STEPS}"]
    add("mnist-ns-sgd", "mnist", None, base + opt + ["loss.name=ns", "optim.name=sgd", f"optim.lr={SGD_LR}"],
        loss="ns", optim="sgd")
    if not quick:
        for name in ("momentum", "nesterov"):
            add(f"mnist-ns-{name}", "mnist", None,
                base + opt + ["loss.name=ns", f"optim.name={name}", f"optim.lr={MOMENTUM_LR}",
                              f"optim.momentum={MOMENTUM}"],
                loss="ns", optim=name)
    cfg = str(ROOT / "configs" / "stacked-mnist.yaml")
    add("stacked-ns-adam", "stacked", cfg, STACKED_COMMON + stacked, loss="ns", optim="adam")
    if not quick:
        # the same configuration for as many steps as fit the 30-CPU-minute budget on an idle core, at the
        # preset's lr and at 1e-3
        long = ["train.steps=20000", "model.scale=0.5", "train.batch_size=64", "eval.every=2000", "eval.samples=26000"]
        add("stacked-ns-adam-20k", "stacked", cfg, STACKED_COMMON + long, loss="ns", optim="adam")
        add("stacked-ns-adam-20k-lr1e-3", "stacked", cfg, STACKED_COMMON + long + ["optim.lr=0.001"],
            loss="ns", optim="adam (lr 1e-3)")
    # the order the runs are trained in: the plain Stacked-MNIST run right after the default MNIST job
    priority = ["mnist-ns-adam", "stacked-ns-adam"]
    return sorted(out, key=lambda r: priority.index(r["name"]) if r["name"] in priority else len(priority))


def command(spec: dict[str, Any], run_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "saddlepoint", "train", "--out", str(run_dir)]
    if spec["config"]:
        cmd += ["--config", spec["config"]]
    for s in spec["set"]:
        cmd += ["--set", s]
    return cmd


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            rows.append(json.loads(line))
    return rows


def run_one(spec: dict[str, Any], runs: Path, fresh: bool, train: bool = True) -> dict[str, Any] | None:
    """Train (unless a finished run with the same command exists) and return the run's record (None: no
    matching finished run and ``train`` is false)."""
    run_dir = runs / spec["name"]
    cmd = command(spec, run_dir)
    stamp = run_dir / "bench-command.json"
    summary_path = run_dir / "summary.json"
    reuse = False
    if not fresh and summary_path.exists() and stamp.exists():
        old = json.loads(stamp.read_text())
        summary = json.loads(summary_path.read_text())
        reuse = old.get("set") == spec["set"] and old.get("config") == spec["config"] \
            and summary.get("status") == "completed"
    if not reuse and not train:
        return None
    if not reuse:
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        print(f"[{time.strftime('%H:%M:%S')}] {spec['name']}: {' '.join(cmd[3:])}", flush=True)
        t0 = time.perf_counter()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter() - t0
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        if proc.returncode not in (0, 3):  # 3: diverged (a result, recorded)
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
            raise SystemExit(f"{spec['name']}: saddlepoint train exited {proc.returncode}")
        run_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"set": spec["set"], "config": spec["config"], "process_wall_s": wall,
                                     "process_cpu_s": cpu, "returncode": proc.returncode, "threads": 1}, indent=1))
    meta = json.loads(stamp.read_text())
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    rows = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    metric_keys = ("fid", "kid", "kid_std", "modes", "kl")
    curve = [{"step": r["step"], "time": r.get("time"), **{k: r[k] for k in metric_keys if k in r}}
             for r in rows if any(k in r for k in metric_keys)]
    train_rows = [r for r in rows if "loss_g" in r]
    wall = meta["process_wall_s"]
    rec = {k: spec[k] for k in ("name", "part", "loss", "optim")}
    rec.update({
        "command": "saddlepoint train" + (f" --config {Path(spec['config']).relative_to(ROOT)}" if spec["config"]
                                          else "") + "".join(f" --set {s}" for s in spec["set"]),
        "status": summary.get("status", "diverged" if meta["returncode"] == 3 else "unknown"),
        "steps": summary.get("steps"),
        "train_wall_s": summary.get("wall_time"),
        "process_wall_s": wall,
        "cpu_minutes": wall * meta["threads"] / 60.0,
        # CPU time the run's process actually consumed (user + system); below wall × threads when other
        # processes share the cores
        "process_cpu_s": meta.get("process_cpu_s"),
        "seconds_per_step": (train_rows[-1]["time"] / train_rows[-1]["step"]) if train_rows else None,
        "final": summary.get("metrics", {}),
        "best": summary.get("best"),
        "protocol": summary.get("protocol"),
        "curve": curve,
        "run_dir": str(run_dir.relative_to(ROOT)) if run_dir.is_relative_to(ROOT) else str(run_dir),
    })
    return rec


def sane(rec: dict[str, Any]) -> list[str]:
    """Range checks of a record's final metrics (empty list: sane)."""
    bad = []
    m = rec["final"]
    if rec["status"] != "completed":
        bad.append(f"{rec['name']}: status {rec['status']}")
    if rec["part"] == "mnist":
        if not (isinstance(m.get("fid"), float) and math.isfinite(m["fid"]) and m["fid"] > 0):
            bad.append(f"{rec['name']}: fid {m.get('fid')}")
        if not (isinstance(m.get("kid"), float) and math.isfinite(m["kid"])):
            bad.append(f"{rec['name']}: kid {m.get('kid')}")
    else:
        if not (isinstance(m.get("modes"), int) and 0 <= m["modes"] <= 1000):
            bad.append(f"{rec['name']}: modes {m.get('modes')}")
        if not (isinstance(m.get("kl"), float) and math.isfinite(m["kl"]) and m["kl"] >= 0):
            bad.append(f"{rec['name']}: kl {m.get('kl')}")
    return bad


def uniform_kl_floor(n: int = 26000, k: int = 1000, trials: int = 200) -> float:
    """Mean KL(histogram ‖ uniform) of n draws from the uniform distribution over k classes: the finite-sample
    floor of the stacked-modes KL for a perfect generator (and a perfect classifier)."""
    import numpy as np

    rng = np.random.default_rng(0)
    p = rng.multinomial(n, np.full(k, 1.0 / k), size=trials) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p * k), 0.0)
    return float(terms.sum(axis=1).mean())


def _fmt(x: Any, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def _curve(rec: dict[str, Any], key: str) -> tuple[list[int], list[float]]:
    pts = [(c["step"], c[key]) for c in rec["curve"] if key in c]
    return [p[0] for p in pts], [p[1] for p in pts]


def headlines(out: dict[str, Any]) -> list[str]:
    """One line per headline figure, against the issue's goals (markdown bullets)."""
    lines = []
    floor = (out.get("mnist_floor") or {}).get("fid_random_halves_5000_vs_5000")
    for r in out["runs"]:
        if r["part"] != "stacked":
            continue
        m = r["final"]
        modes, kl = m.get("modes"), m.get("kl")
        cpu = r.get("process_cpu_s")
        met = modes == 1000 and kl is not None and kl <= 0.05 and r["cpu_minutes"] <= 30
        gap = "" if met or kl is None else f"; KL {kl / 0.05:.1f}× the goal"
        lines.append(f"Stacked MNIST, {r['loss']} + {r['optim']} (DCGAN-28 ×0.5, {r['steps']:,} steps): **{modes} "
                     f"modes, KL {kl:.3f}** in {r['cpu_minutes']:.1f} CPU-minutes (wall × 1 thread; "
                     f"{(cpu or 0) / 60:.1f} min of CPU time used) — goal 1,000 modes, KL ≤ 0.05, ≤ 30 CPU-minutes: "
                     f"**{'met' if met else 'missed'}**{gap} (PacGAN's best: 1,000 / 0.06).")
    losses = sorted((r for r in out["runs"] if r["part"] == "mnist" and r["optim"] == "adam"
                     and isinstance(r["final"].get("fid"), float)), key=lambda r: r["final"]["fid"])
    if losses:
        parts = ", ".join(f"{r['loss']} {r['final']['fid']:.1f}" for r in losses)
        lines.append(f"MNIST FID per loss (Adam, {losses[0]['steps']:,} steps, 2,500 samples): {parts}; "
                     f"real-vs-real floor {floor:.2f}" if floor else f"MNIST FID per loss: {parts}")
    opts = [r for r in out["runs"] if r["part"] == "mnist" and r["loss"] == "ns"]
    if opts:
        at = min(r["steps"] or 0 for r in opts)
        parts = []
        for r in opts:
            by = {c["step"]: c.get("fid") for c in r["curve"]}
            if by.get(at) is not None:
                parts.append(f"{r['optim']} {by[at]:.1f}")
        lines.append(f"MNIST FID at step {at:,} (NS loss): " + ", ".join(parts))
    return lines


def write_report(out: dict[str, Any], md_path: Path, img_dir: Path) -> None:
    """The markdown section (included into docs/benchmarks.md) and its plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    floor = out.get("mnist_floor") or {}
    mach = out["machine"]
    L: list[str] = []
    L.append("## MNIST and Stacked MNIST (issue 7, parts 5 and 6)")
    L.append("")
    L.append(f"Reproduce: `python benchmarks/bench_mnist.py` (all runs one after another, ≈ "
             f"{out['seconds_total'] / 60:.0f} minutes on one core; `--quick` for a 2-minute sanity subset). "
             f"Measured {out['date']} on a shared {mach['cores']}-core x86-64 CPU, torch {mach['torch']}, "
             "every run with 1 thread, **one seed per configuration** (differences of a few FID points are within "
             "seed-to-seed noise; no error bars). Results: `benchmarks/results/mnist.json`; run directories "
             "`runs/bench-mnist/<name>`.")
    L.append("")
    L.extend(f"- {line}" for line in headlines(out))
    L.append("")

    # ------------------------------------------------------------------ Stacked MNIST
    stacked = [r for r in out["runs"] if r["part"] == "stacked"]
    if stacked:
        kl_floor = uniform_kl_floor()
        L.append("### Stacked MNIST: modes and KL (26,000 samples)")
        L.append("")
        L.append("`configs/stacked-mnist.yaml` (DCGAN-28 on three channels, alternating Adam 5e-4, β 0.5/0.999, "
                 "EMA 0.999) at `model.scale` 0.5 and batch 64; `stacked-modes` on 26,000 EMA samples, each "
                 "channel classified by the shipped MNIST classifier; KL(histogram ‖ uniform over 1,000), natural "
                 "log. CPU-minutes = whole-process wall time (training, evaluations, start-up) × 1 thread. "
                 "**Goal: 1,000 modes and KL ≤ 0.05 within 30 CPU-minutes.**")
        L.append("")
        L.append("| configuration | steps | modes | KL | CPU-minutes (wall × 1 thread) | CPU time used (min) "
                 "| goal met |")
        L.append("|---|---|---|---|---|---|---|")
        for r in stacked:
            m = r["final"]
            ok = m.get("modes") == 1000 and (m.get("kl") or 9) <= 0.05 and r["cpu_minutes"] <= 30
            cpu = r.get("process_cpu_s")
            L.append(f"| {r['loss']} + {r['optim']} (DCGAN-28 ×0.5) | {r['steps']} | {_fmt(m.get('modes'))} | "
                     f"{_fmt(m.get('kl'), 3)} | {r['cpu_minutes']:.1f} | {_fmt(cpu / 60 if cpu else None)} | "
                     f"{'yes' if ok else 'no'} |")
        L.append("| *published:* DCGAN (VEEGAN's set-up, Srivastava et al. 2017) | | 99 | 3.4 | | | |")
        L.append("| *published:* PacDCGAN2 (Lin et al. 2018, best) | | 1000 | 0.06 | | | |")
        L.append("| *real Stacked-MNIST images, all 10,000 (docs/metrics.md)* | | 1000 | 0.056 | | | |")
        L.append(f"| *perfect uniform generator, 26,000 draws (simulated floor)* | | 1000 | {kl_floor:.3f} | | | |")
        L.append("")
        L.append("CPU time used = user + system time of the run's process (`getrusage`); it is below wall × threads "
                 "when other processes share the cores (they did during these measurements).")
        L.append("")
        L.append("The 6,000-step run shared the machine with other jobs (0.27 s/step); the 20,000-step runs ran two "
                 "at a time on the otherwise idle 2 cores (≈ 0.07 s/step), so they fit ≈ 3× the steps in the same "
                 "CPU-minutes.")
        L.append("")
        L.append("During training (modes / KL, minutes = training-loop time at that step, evaluations included, "
                 "1 thread):")
        L.append("")
        steps = sorted({c["step"] for r in stacked for c in r["curve"]})
        L.append("| configuration | " + " | ".join(f"step {s}" for s in steps) + " |")
        L.append("|---|" + "---|" * len(steps))
        for r in stacked:
            by = {c["step"]: c for c in r["curve"]}
            cells = [f"{by[s].get('modes')} / {_fmt(by[s].get('kl'), 3)} ({(by[s].get('time') or 0) / 60:.1f} min)"
                     if s in by else "" for s in steps]
            L.append(f"| {r['loss']} + {r['optim']}, {r['steps']} steps | " + " | ".join(cells) + " |")
        L.append("")
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
        for r in stacked:
            t = [(c.get("time") or 0) / 60 for c in r["curve"]]
            label = f"{r['loss']} + {r['optim']}, {r['steps']} steps"
            ax[0].plot(t, [c["modes"] for c in r["curve"]], "o-", label=label)
            ax[1].plot(t, [c["kl"] for c in r["curve"]], "o-", label=label)
        ax[0].axhline(1000, color="grey", lw=0.8, ls="--")
        ax[0].set_ylabel("modes (of 1,000)")
        ax[1].axhline(0.05, color="red", lw=0.8, ls="--", label="goal KL 0.05")
        ax[1].axhline(kl_floor, color="grey", lw=0.8, ls=":", label="finite-sample floor")
        ax[1].set_yscale("log")
        ax[1].set_ylabel("KL to uniform")
        for a in ax:
            a.axvline(30, color="red", lw=0.8, ls="--")
            a.set_xlabel("CPU-minutes (wall × 1 thread)")
            a.grid(alpha=0.3)
        ax[1].legend(fontsize=7)
        fig.suptitle("Stacked MNIST, 26,000 samples", fontsize=10)
        fig.tight_layout()
        fig.savefig(img_dir / "stacked-mnist-modes.png", dpi=110)
        plt.close(fig)
        L.append("![Stacked-MNIST modes and KL vs CPU-minutes](img/stacked-mnist-modes.png)")
        L.append("")

    # ------------------------------------------------------------------ MNIST losses
    mnist = [r for r in out["runs"] if r["part"] == "mnist"]
    losses = [r for r in mnist if r["optim"] == "adam"]
    if losses:
        L.append("### MNIST: FID and KID per loss (Adam)")
        L.append("")
        L.append("The default job's model and budget: `mnist-t10k`, DCGAN-28 at `model.scale` 0.5, z 64, batch 32, "
                 "3,500 alternating steps (D first), EMA 0.999, seed 0; Adam lr 1e-3, β 0.5/0.999, n_critic 1 for "
                 "every loss (WGAN-GP at the same settings, not its paper's n_critic 5 and β 0/0.9; GP weight 10). "
                 "FID/KID in the shipped MNIST-classifier features (128-d), 2,500 EMA samples vs all 10,000 "
                 "reference digits; KID ± the standard deviation over 100 subsets of 1,000.")
        L.append("")
        L.append("| loss | FID (final) | best FID (step) | KID (final) | s/step (evaluations incl.) | CPU-minutes |")
        L.append("|---|---|---|---|---|---|")
        for r in sorted(losses, key=lambda r: r["final"].get("fid", math.inf)):
            m = r["final"]
            steps, fids = _curve(r, "fid")
            i = min(range(len(fids)), key=fids.__getitem__) if fids else None
            best = f"{fids[i]:.1f} ({steps[i]})" if i is not None else "–"
            L.append(f"| {r['loss']} | **{_fmt(m.get('fid'))}** | {best} | {_fmt(m.get('kid'), 2)} ± "
                     f"{_fmt(m.get('kid_std'), 2)} | {_fmt(r['seconds_per_step'], 3)} | {r['cpu_minutes']:.1f} |")
        if floor:
            L.append(f"| *real vs real: two random halves of t10k, 5,000 vs 5,000* | "
                     f"*{floor['fid_random_halves_5000_vs_5000']:.2f}* | | "
                     f"*{floor['kid_random_halves']:.2f} ± {floor['kid_random_halves_std']:.2f}* | | |")
            L.append(f"| *real vs real: two random disjoint sets of 2,500* | *{floor['fid_random_2500_vs_2500']:.2f}* "
                     "| | | | |")
            L.append(f"| *real vs real: file-order halves (writer shift SD-3 vs SD-1)* | "
                     f"*{floor['fid_file_halves_5000_vs_5000']:.2f}* | | *{floor['kid_file_halves']:.2f} ± "
                     f"{floor['kid_file_halves_std']:.2f}* | | |")
        L.append("")
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for r in losses:
            s_, f_ = _curve(r, "fid")
            ax.plot(s_, f_, "o-", ms=3, label=r["loss"])
        if floor:
            ax.axhline(floor["fid_random_halves_5000_vs_5000"], color="grey", ls=":", lw=0.8,
                       label="real-vs-real floor")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("FID (MNIST-classifier features)")
        ax.set_title("MNIST, DCGAN-28 ×0.5, Adam: FID per loss", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(img_dir / "mnist-losses.png", dpi=110)
        plt.close(fig)
        L.append("![MNIST FID vs step per loss](img/mnist-losses.png)")
        L.append("")

    # ------------------------------------------------------------------ MNIST optimizers
    opts = [r for r in mnist if r["loss"] == "ns"]
    if opts:
        lrs = out["lrs"]
        desc = {"adam": f"Adam lr {lrs['adam']:g}, β 0.5/0.999", "sgd": f"SGD lr {lrs['sgd']:g}",
                "momentum": f"heavy ball lr {lrs['momentum'][0]:g}, β {lrs['momentum'][1]:g}",
                "nesterov": f"Nesterov (NAG) lr {lrs['nesterov'][0]:g}, β {lrs['nesterov'][1]:g}"}
        L.append("### MNIST: convergence of SGD, momentum, Nesterov and Adam (NS loss)")
        L.append("")
        L.append(f"Same model, data and evaluation as above; alternating updates; FID every 500 steps. SGD, "
                 f"momentum and Nesterov ran {OPT_STEPS:,} steps (compute); the Adam curve is the `ns` run's "
                 f"(3,500 steps; its first {OPT_STEPS:,} are the same trajectory, no schedule depends on the "
                 "run length). "
                 "Momentum and Nesterov use the same effective step η/(1−β) as SGD; Nesterov takes each "
                 "player's gradient at its look-ahead point θ + βv (Sutskever et al. 2013). The learning rates "
                 "were chosen, not tuned.")
        L.append("")
        steps_all = sorted({c["step"] for r in opts for c in r["curve"] if "fid" in c})
        L.append("| optimizer | " + " | ".join(f"{s}" for s in steps_all)
                 + " | KID (final) | s/step (evaluations incl.) |")
        L.append("|---|" + "---|" * (len(steps_all) + 2))
        order = {"sgd": 0, "momentum": 1, "nesterov": 2, "adam": 3}
        for r in sorted(opts, key=lambda r: order.get(r["optim"], 9)):
            by = {c["step"]: c["fid"] for c in r["curve"] if "fid" in c}
            m = r["final"]
            L.append(f"| {desc.get(r['optim'], r['optim'])} | " + " | ".join(_fmt(by.get(s)) for s in steps_all)
                     + f" | {_fmt(m.get('kid'), 2)} | {_fmt(r['seconds_per_step'], 3)} |")
        L.append("")
        L.append("(FID at each step; the last column of steps is the final evaluation.)")
        L.append("")
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for r in sorted(opts, key=lambda r: order.get(r["optim"], 9)):
            s_, f_ = _curve(r, "fid")
            ax.plot(s_, f_, "o-", ms=3, label=desc.get(r["optim"], r["optim"]))
        if floor:
            ax.axhline(floor["fid_random_halves_5000_vs_5000"], color="grey", ls=":", lw=0.8,
                       label="real-vs-real floor")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("FID (MNIST-classifier features)")
        ax.set_title("MNIST, DCGAN-28 ×0.5, NS loss: FID per optimizer", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(img_dir / "mnist-optimizers.png", dpi=110)
        plt.close(fig)
        L.append("![MNIST FID vs step per optimizer](img/mnist-optimizers.png)")
        L.append("")
    md_path.write_text("\n".join(L) + "\n")


def machine() -> dict[str, Any]:
    import torch

    return {"cores": os.cpu_count(), "threads_per_run": 1, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.machine()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a sanity subset that runs in under 2 minutes")
    ap.add_argument("--runs", default=None, help="parent directory of the run directories "
                    "(default runs/bench-mnist or runs/bench-mnist-quick)")
    ap.add_argument("--fresh", action="store_true", help="retrain even where a finished run exists")
    ap.add_argument("--only", default="", help="comma-separated run names to train (the rest only read if present)")
    ap.add_argument("--no-train", action="store_true", help="only assemble the results from existing runs")
    ap.add_argument("--out", default=None, help="results file (default results/mnist.json, mnist-quick.json)")
    ap.add_argument("--merge", action="store_true",
                    help="take the records of runs not found now from the existing results file (same --out)")
    args = ap.parse_args()
    runs = Path(args.runs) if args.runs else ROOT / "runs" / ("bench-mnist-quick" if args.quick else "bench-mnist")
    runs = runs.resolve()
    only = {s for s in args.only.split(",") if s}
    records = []
    for spec in specs(args.quick):
        train = not args.no_train and (not only or spec["name"] in only)
        rec = run_one(spec, runs, args.fresh and train, train)
        if rec is None:
            print(f"{spec['name']}: no finished run with these settings in {runs}", flush=True)
            continue
        records.append(rec)
        r = records[-1]
        print(f"  {r['name']}: {r['status']} {json.dumps(r['final'])} "
              f"({r['process_wall_s']:.0f} s, {r['seconds_per_step'] or float('nan'):.3f} s/step)", flush=True)
    path = Path(args.out) if args.out else RESULTS / ("mnist-quick.json" if args.quick else "mnist.json")
    if args.merge and path.exists():  # records of runs whose directories are gone (another machine, cleaned up)
        have = {r["name"] for r in records}
        earlier = {r["name"]: r for r in json.loads(path.read_text()).get("runs", []) if r["name"] not in have}
        order = [spec["name"] for spec in specs(args.quick)]
        records = sorted([*records, *(r for n, r in earlier.items() if n in order)],
                         key=lambda r: order.index(r["name"]))
    floor = json.loads((RESULTS / "metrics.json").read_text())["mnist_floor"] if (RESULTS / "metrics.json").exists() \
        else None
    out = {"quick": args.quick, "machine": machine(), "seconds_total": sum(r["process_wall_s"] for r in records),
           "date": time.strftime("%Y-%m-%d"), "mnist_floor": floor,
           "lrs": {"adam": 1e-3, "sgd": SGD_LR, "momentum": [MOMENTUM_LR, MOMENTUM],
                   "nesterov": [MOMENTUM_LR, MOMENTUM]},
           "runs": records}
    problems = [p for r in records for p in sane(r)]
    out["sane"] = not problems
    out["problems"] = problems
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    for line in headlines(out):
        print("  " + line.replace("**", ""))
    if not args.quick:
        write_report(out, RESULTS / "mnist.md", IMG)
        print(f"wrote {(RESULTS / 'mnist.md').relative_to(ROOT)} and docs/img/mnist-*.png")
    if problems:
        print("NOT SANE: " + "; ".join(problems))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
