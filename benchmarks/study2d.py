"""Study protocol v2 on the 2-D mixtures (issue 16): every optimizer and loss, tuned alike on held-out seeds,
judged at equal steps and at equal compute, on two architectures, against the perfect sampler's floor.

Protocol, fixed before any run (``bench_quality2d.py`` is protocol v1, kept for its history):

1. **Settings.** The presets ``configs/ring.yaml`` and ``configs/grid.yaml`` fix data, batch, EMA, evaluation
   (2,500 samples, PacGAN's 3σ rule) and the budget. Architectures: ``preset`` (the preset's MLP) and
   ``pacgan`` (PacGAN, Lin et al. 2018: G 4×400 with BatchNorm, D 3×200, ReLU in place of maxout).
2. **Budget and views.** B = the preset's steps × its gradient evaluations per step (a Hessian-vector or mixed
   product counts as one). Every run takes S = B/2 steps (the steps alternating Adam takes within B) and is
   evaluated every S/30 steps. *Equal steps*: the evaluation at step S. *Equal compute*: the last evaluation
   whose gradient evaluations + products are ≤ B (for a 2-per-step method that is step S). The curves also give
   quality against wall time (1 torch thread per run, ``--workers`` runs at a time).
3. **Score.** q = modes/K + hq − KL (K modes; hq the high-quality share; KL of the high-quality histogram vs
   uniform, natural log). A diverged run scores modes 0, hq 0, KL log K from its divergence on.
4. **Learning rate.** A log grid of 7 values, centre × 10^(k/3) for k = −3..3 (2 decades around each method's
   centre, ``CENTRES``), × β1 ∈ {0, 0.5} for the Adam-based rules; each point run on the held-out seeds
   100 and 101. For each view separately the point with the highest mean q wins. If a winner lies on the lr
   grid's edge, the grid grows by one value beyond it (up to 3 times).
5. **Report.** Seeds 0–4 at each view's chosen point: mean ± standard error of modes, hq, KL and q. Every
   method is compared with the view's best by a two-sided paired t-test on q across the seeds (same seed, same
   initial weights and data stream); "within noise" when p ≥ 0.05. Beside them: the perfect sampler's floor
   (2,500 points drawn from the data itself, 200 draws, through the same metric) and PacGAN's published rows,
   quoted whole.

Finished runs are appended to ``benchmarks/results/study2d-runs.jsonl`` (the record across sessions: a run there
is never redone), so the study can be run in pieces:

    python benchmarks/study2d.py --datasets ring --archs preset                  # one piece (CPU-hours)
    python benchmarks/study2d.py --report                                        # tables and plots from the record
    python benchmarks/study2d.py --quick                                         # a one-minute pipeline check

The report goes to ``benchmarks/results/study2d.{json,md}`` and ``docs/img/study2d-<dataset>-<arch>.png``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"

from bench_quality2d import N_MODES, load_average, mean_se, preset  # noqa: E402

#: PacGAN (Lin et al. 2018), 2-D table, mean over 10 trials: rows quoted whole (modes, high quality, KL)
PACGAN = {
    "ring": [("GAN", "6.3", "98.2%", "0.45"), ("PacGAN2", "7.9", "95.6%", "0.07"), ("PacGAN3", "7.8", "97.7%", "0.10")],
    "grid": [("GAN", "17.3", "94.8%", "0.70"), ("PacGAN4", "24.8", "93.6%", "0.04")],
}
ARCHS: dict[str, dict[str, Any]] = {
    "preset": {},
    "pacgan": {"depth": 4, "width": 400, "batchnorm": True, "d_depth": 3, "d_width": 200},
}


@dataclass(frozen=True)
class Method:
    """One row of the study: an optimizer (loss ns) or a loss (with the preset's optimizer)."""

    kind: str  # "optim" | "loss"
    section: dict[str, Any]
    centre: float  # the lr grid's centre: the method's usual GAN step size
    adam_based: bool  # β1 ∈ {0, 0.5} is searched
    extra: dict[str, Any] = field(default_factory=dict)


def _adam(name: str, centre: float = 1e-3, **extra: Any) -> Method:
    return Method("optim", {"name": name, **extra}, centre, True)


#: every game optimizer of the library, with its lr grid's centre (each row names the paper's own setting)
OPTIMIZERS: dict[str, Method] = {
    "sgd": Method("optim", {"name": "sgd"}, 3e-2, False),
    "momentum": Method("optim", {"name": "momentum"}, 1e-2, False),
    "nesterov": Method("optim", {"name": "nesterov"}, 1e-2, False),
    "adam": _adam("adam"),  # DCGAN 2e-4, PacGAN 1e-4, the presets 1e-3: all inside 1e-4..1e-2
    "rmsprop": Method("optim", {"name": "rmsprop"}, 1e-3, False),
    "extragradient": _adam("extragradient"),  # Extra-Adam (Gidel et al. 2019)
    "past-extragradient": _adam("past-extragradient"),
    "optimistic": _adam("optimistic"),  # Optimistic Adam (Daskalakis et al. 2018)
    "lookahead": _adam("lookahead", 2e-3),  # LA around Adam, k 5, α 0.5 (Chavdarova et al. 2021)
    "consensus": _adam("consensus", base="adam"),  # on Adam (Mescheder et al. 2017 used RMSProp 1e-4, γ 10)
    "sga": _adam("sga", base="adam"),
    "lead": _adam("lead", base="adam"),  # the authors' GAN runs use Adam
    "acgd": Method("optim", {"name": "acgd"}, 3e-3, False),
    "follow-ridge": Method("optim", {"name": "follow-ridge"}, 1e-3, False),
}
#: the four losses, each with the preset's optimizer
LOSSES: dict[str, Method] = {
    "ns": Method("loss", {"name": "ns", "penalty": []}, 1e-3, True),
    "wgan-gp": Method("loss", {"name": "wgan", "penalty": ["gp"], "gp_weight": 10.0}, 1e-3, True),
    "hinge": Method("loss", {"name": "hinge", "penalty": []}, 1e-3, True),
    "lsgan": Method("loss", {"name": "lsgan", "penalty": []}, 1e-3, True),
}
SELECT_SEEDS = (100, 101)
EVAL_SEEDS = (0, 1, 2, 3, 4)
HALF = 3  # 2·HALF + 1 lr values per decade-third grid
MAX_WIDEN = 3
EVALS_PER_RUN = 30
ALPHA = 0.05


# ---------------------------------------------------------------------------------- configurations
@dataclass(frozen=True)
class Point:
    """A run: what, where, with which lr (grid index k: centre·10^(k/3)) and β1, on which seed."""

    dataset: str
    arch: str
    method: str
    k: int
    beta1: float | None
    seed: int

    def lr(self, centre: float) -> float:
        return float(f"{centre * 10 ** (self.k / 3):.4g}")

    def key(self, steps: int) -> str:
        b = "-" if self.beta1 is None else f"{self.beta1:g}"
        return f"{self.dataset}|{self.arch}|{self.method}|k{self.k}|b{b}|s{self.seed}|S{steps}"


def method_of(name: str) -> Method:
    return OPTIMIZERS[name] if name in OPTIMIZERS else LOSSES[name]


def budget(dataset: str, scale: float = 1.0) -> tuple[int, int]:
    """(B gradient evaluations, S steps) of a dataset: B from the preset's steps at its method's cost."""
    base = preset(dataset)
    per_step = {"consensus": 3, "sga": 3}.get(base["optim"]["name"], 2)  # measured in protocol v1 (costs)
    b = round(base["train"]["steps"] * per_step * scale)
    return b, b // 2


def config(p: Point, steps: int) -> dict[str, Any]:
    base = preset(p.dataset)
    m = method_of(p.method)
    cfg = json.loads(json.dumps(base))
    cfg["seed"] = p.seed
    cfg["model"].update(ARCHS[p.arch])
    if m.kind == "optim":
        cfg["optim"] = {**m.section, "lr": p.lr(m.centre)}
        cfg["loss"] = {"name": "ns"}
    else:
        cfg["optim"] = {**base["optim"], "lr": p.lr(m.centre)}
        cfg["loss"] = dict(m.section)
    if p.beta1 is not None:
        cfg["optim"].update({"beta1": p.beta1, "beta2": 0.999})
    every = max(1, steps // EVALS_PER_RUN)
    cfg["train"]["steps"] = steps
    cfg["eval"].update({"every": every, "metrics": ["modes"], "samples": 2500})
    cfg["log"].update({"every": every, "progress": "none", "report": False})
    cfg["checkpoint"] = {"every": 0}
    return cfg


# ---------------------------------------------------------------------------------- runs and the record
def _init_worker() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)


def train_point(cfg: dict[str, Any], out: str) -> dict[str, Any]:
    """Train one run; return its record (status, the evaluation curve, wall time); its folder is removed."""
    from saddlepoint.errors import DivergenceError
    from saddlepoint.training import train

    run = Path(out)
    shutil.rmtree(run, ignore_errors=True)
    try:
        train(cfg, run)
    except DivergenceError:
        pass
    try:
        summary = json.loads((run / "summary.json").read_text())
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    except (OSError, ValueError):
        summary, rows = {"status": "failed"}, []
    curve, spent = {}, 0
    for r in rows:
        if "grad_evals" in r:
            spent = r["grad_evals"] + r.get("hvps", 0)
        elif r.get("final"):  # the final row carries no counts: the run's totals
            spent = summary.get("grad_evals", 0) + summary.get("hvps", 0)
        if "modes" in r:
            curve[r["step"]] = [r["step"], spent, r.get("time"), r["modes"], r["hq"], r["kl"]]
    shutil.rmtree(run, ignore_errors=True)
    return {"status": summary.get("status"), "wall_time": summary.get("wall_time"),
            "steps_done": summary.get("steps"), "curve": [curve[s] for s in sorted(curve)]}


def load_record(path: Path) -> dict[str, dict[str, Any]]:
    """The finished runs, by key (later lines win)."""
    lines = path.read_text().splitlines() if path.exists() else []
    return {r["key"]: r for r in map(json.loads, filter(str.strip, lines))}


def run_points(points: list[tuple[Point, int]], record: dict[str, dict[str, Any]], path: Path, work: Path,
               workers: int) -> None:
    """Run every (point, steps) not in the record, ``workers`` at a time; append each to the record as it ends."""
    todo = [(p, s) for p, s in dict.fromkeys(points) if p.key(s) not in record]
    if not todo:
        return
    print(f"  {len(todo)} runs", flush=True)
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = {pool.submit(train_point, config(p, s), str(work / p.key(s).replace("|", "_"))): (p, s)
                   for p, s in todo}
        for n, fut in enumerate(cf.as_completed(futures), 1):
            p, s = futures[fut]
            rec = {"key": p.key(s), **p.__dict__, "steps": s, "lr": p.lr(method_of(p.method).centre),
                   **fut.result()}
            record[rec["key"]] = rec
            with path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            last = rec["curve"][-1] if rec["curve"] else None
            print(f"  [{n}/{len(todo)}] {rec['key']}: {rec['status']} {last} {rec['wall_time']} s", flush=True)


# ---------------------------------------------------------------------------------- scores
def at_view(rec: dict[str, Any], view: str, b: int, s: int, k_modes: int) -> dict[str, float]:
    """Modes, hq, KL, q of a run at a view's point (see the protocol); a run that stopped early scores the floor."""
    curve = rec["curve"]
    row = None
    if view == "steps":
        row = next((c for c in curve if c[0] == s), None)
    else:
        within = [c for c in curve if c[1] <= b]
        row = within[-1] if within else None
        if row is not None and rec["status"] != "completed" and row is curve[-1] and row[1] < b * 0.95:
            row = None  # diverged before the budget was spent
    if row is None:
        modes, hq, kl = 0.0, 0.0, math.log(k_modes)
    else:
        modes, hq, kl = float(row[3]), float(row[4]), float(row[5])
    return {"modes": modes, "hq": hq, "kl": kl, "q": modes / k_modes + hq - kl}


def grid_points(dataset: str, arch: str, name: str, ks: list[int], seeds: tuple[int, ...]) -> list[Point]:
    betas: list[float | None] = [0.0, 0.5] if method_of(name).adam_based else [None]
    return [Point(dataset, arch, name, k, b, seed) for k in ks for b in betas for seed in seeds]


def choose(dataset: str, arch: str, name: str, ks: list[int], record: dict[str, Any], b: int, s: int,
           view: str) -> tuple[int, float | None, float]:
    """The (k, β1) with the highest mean q over the held-out seeds at a view, and that q."""
    k_modes = N_MODES[dataset]
    best: tuple[int, float | None, float] | None = None
    for k in ks:
        for beta in ([0.0, 0.5] if method_of(name).adam_based else [None]):
            qs = [at_view(record[Point(dataset, arch, name, k, beta, seed).key(s)], view, b, s, k_modes)["q"]
                  for seed in SELECT_SEEDS]
            mean = statistics.fmean(qs)
            if best is None or mean > best[2]:
                best = (k, beta, mean)
    assert best is not None
    return best


# ---------------------------------------------------------------------------------- the study
def study(dataset: str, arch: str, names: list[str], args: argparse.Namespace, record: dict[str, Any],
          path: Path) -> None:
    b, s = budget(dataset, args.budget_scale)
    work = Path(args.work)
    grids = {name: list(range(-HALF, HALF + 1)) for name in names}
    print(f"== {dataset} / {arch}: B = {b} gradient evaluations, S = {s} steps", flush=True)
    for _ in range(0 if args.quick else MAX_WIDEN + 1):  # selection, widening a grid whose winner is on its edge
        run_points([(p, s) for name in names for p in grid_points(dataset, arch, name, grids[name], SELECT_SEEDS)],
                   record, path, work, args.workers)
        widened = False
        for name in names:
            for view in ("steps", "compute"):
                k = choose(dataset, arch, name, grids[name], record, b, s, view)[0]
                if k == min(grids[name]) and k > -HALF - MAX_WIDEN:
                    grids[name].insert(0, k - 1)
                    widened = True
                elif k == max(grids[name]) and k < HALF + MAX_WIDEN:
                    grids[name].append(k + 1)
                    widened = True
        if not widened:
            break
    if args.quick:
        chosen = {(name, v): (0, 0.5 if method_of(name).adam_based else None, 0.0) for name in names
                  for v in ("steps", "compute")}
    else:
        chosen = {(name, v): choose(dataset, arch, name, grids[name], record, b, s, v) for name in names
                  for v in ("steps", "compute")}
    eval_seeds = EVAL_SEEDS[:2] if args.quick else EVAL_SEEDS
    run_points([(Point(dataset, arch, name, k, beta, seed), s) for (name, _), (k, beta, _) in chosen.items()
                for seed in eval_seeds], record, path, work, args.workers)


# ---------------------------------------------------------------------------------- report
def floors(dataset: str, draws: int = 200) -> dict[str, dict[str, float]]:
    """The perfect sampler: 2,500 points from the data itself per draw, through the study's metric."""
    import torch

    from saddlepoint.data import build_dataset
    from saddlepoint.metrics.modes import mode_stats

    data = build_dataset(dataset)
    k = N_MODES[dataset]
    rows = []
    for i in range(draws):
        m = mode_stats(data.sample(2500, torch.Generator().manual_seed(i)), data.centers, data.std)
        rows.append({**m, "q": m["modes"] / k + m["hq"] - m["kl"]})
    return {key: {"mean": statistics.fmean(r[key] for r in rows), "sd": statistics.stdev(r[key] for r in rows)}
            for key in ("modes", "hq", "kl", "q")}


def paired_p(a: list[float], b: list[float]) -> float:
    """Two-sided paired t-test p-value (1.0 when the differences are all equal to zero)."""
    from scipy import stats

    d = [x - y for x, y in zip(a, b)]
    if all(abs(x) < 1e-12 for x in d):
        return 1.0
    if statistics.pstdev(d) == 0:
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def summarise(record: dict[str, Any], dataset: str, arch: str) -> dict[str, Any] | None:
    """Selection, per-view results, paired tests and curves of one dataset × architecture, from the record."""
    runs = [r for r in record.values() if r["dataset"] == dataset and r["arch"] == arch]
    if not runs:
        return None
    k_modes = N_MODES[dataset]
    s = max(r["steps"] for r in runs)
    b = 2 * s  # B = 2S (protocol, point 2)
    names = [n for n in [*OPTIMIZERS, *LOSSES] if any(r["method"] == n for r in runs)]
    out: dict[str, Any] = {"budget": b, "steps": s, "views": {}, "curves": {}, "grids": {}}
    for view in ("steps", "compute"):
        rows: dict[str, Any] = {}
        for name in names:
            ks = sorted({r["k"] for r in runs if r["method"] == name and r["seed"] in SELECT_SEEDS
                         and r["steps"] == s})
            complete = [k for k in ks if all(Point(dataset, arch, name, k, beta, seed).key(s) in record
                                             for beta in ([0.0, 0.5] if method_of(name).adam_based else [None])
                                             for seed in SELECT_SEEDS)]
            if not complete:
                continue
            k, beta, q_sel = choose(dataset, arch, name, complete, record, b, s, view)
            evals = [record.get(Point(dataset, arch, name, k, beta, seed).key(s)) for seed in EVAL_SEEDS]
            if any(e is None for e in evals):
                continue
            scores = [at_view(e, view, b, s, k_modes) for e in evals]
            m = method_of(name)
            rows[name] = {
                "kind": m.kind, "lr": Point(dataset, arch, name, k, beta, 0).lr(m.centre), "k": k, "beta1": beta,
                "edge": k in (min(complete), max(complete)), "grid": [min(complete), max(complete)],
                "selection_q": q_sel, "per_seed_q": [x["q"] for x in scores],
                **{key: dict(zip(("mean", "se"), mean_se([x[key] for x in scores])))
                   for key in ("modes", "hq", "kl", "q")},
                "wall_time_median": statistics.median(e["wall_time"] or 0.0 for e in evals),
                "diverged": sum(e["status"] != "completed" for e in evals),
            }
            if view == "compute":
                out["curves"][name] = curve_mean(evals, k_modes)
        if rows:
            best = max(rows, key=lambda n: rows[n]["q"]["mean"])
            for name, row in rows.items():
                row["p_vs_best"] = paired_p(row["per_seed_q"], rows[best]["per_seed_q"]) if name != best else None
            out["views"][view] = {"best": best, "rows": rows}
    return out


def curve_mean(evals: list[dict[str, Any]], k_modes: int) -> list[list[float]]:
    """[step, mean gradient evaluations, mean wall s, mean q] over the seeds at every evaluated step."""
    steps = sorted({c[0] for e in evals for c in e["curve"]})
    out = []
    for st in steps:
        pts = [next((c for c in e["curve"] if c[0] == st), None) for e in evals]
        qs = [c[3] / k_modes + c[4] - c[5] if c else 0.0 - math.log(k_modes) for c in pts]
        seen = [c for c in pts if c]
        out.append([st, statistics.fmean(c[1] for c in seen), statistics.fmean(c[2] or 0.0 for c in seen),
                    statistics.fmean(qs)])
    return out


def verdict(row: dict[str, Any], best: str, name: str) -> str:
    if name == best:
        return "**best**"
    p = row["p_vs_best"]
    return f"within noise (p {p:.2f})" if p >= ALPHA else f"worse (p {p:.3f})"


def markdown(result: dict[str, Any]) -> str:
    lines = ["## Study protocol v2 (2-D mixtures)", "",
             "Written by `python benchmarks/study2d.py --report` from the run record "
             "`benchmarks/results/study2d-runs.jsonl`; the protocol is in the script's docstring: lr from a "
             "7-value log grid over 2 decades (× β1 ∈ {0, 0.5} for Adam-based rules) chosen per view on the "
             "held-out seeds 100 and 101 by the mean of q = modes/K + hq − KL, widened at an edge; seeds 0–4 at "
             "the chosen point, mean ± standard error; p: two-sided paired t-test on q against the view's best.",
             ""]
    for label, res in result["pieces"].items():
        dataset, arch = label.split("/")
        fl = result["floors"][dataset]
        lines += [f"### {dataset.capitalize()} ({N_MODES[dataset]} modes), {arch} architecture", "",
                  f"Budget B = {res['budget']:,} gradient evaluations; S = {res['steps']:,} steps. Perfect sampler "
                  f"(the floor/ceiling, 200 draws of 2,500 points from the data): modes {fl['modes']['mean']:.2f}, "
                  f"hq {100 * fl['hq']['mean']:.2f}% (s.d. {100 * fl['hq']['sd']:.2f}), KL {fl['kl']['mean']:.4f} "
                  f"(s.d. {fl['kl']['sd']:.4f}), q {fl['q']['mean']:.3f}.", ""]
        for view, title in (("steps", f"Equal steps ({res['steps']:,} steps)"),
                            ("compute", f"Equal compute ({res['budget']:,} gradient evaluations)")):
            v = res["views"].get(view)
            if not v:
                continue
            lines += [f"**{title}**", "", "| method | lr | β1 | modes | high quality | KL | q | vs best | "
                      "diverged | wall s/run |", "|---|---|---|---|---|---|---|---|---|---|"]
            for name, r in sorted(v["rows"].items(), key=lambda kv: -kv[1]["q"]["mean"]):
                lr = f"{r['lr']:g}" + (" (edge)" if r["edge"] else "")
                label_ = name if r["kind"] == "optim" else f"{name} (loss)"
                lines.append(
                    f"| {label_} | {lr} | {'–' if r['beta1'] is None else r['beta1']:} | "
                    f"{r['modes']['mean']:.2f} ± {r['modes']['se']:.2f} | "
                    f"{100 * r['hq']['mean']:.1f} ± {100 * r['hq']['se']:.1f}% | "
                    f"{r['kl']['mean']:.3f} ± {r['kl']['se']:.3f} | {r['q']['mean']:.3f} ± {r['q']['se']:.3f} | "
                    f"{verdict(r, v['best'], name)} | {r['diverged']}/5 | {r['wall_time_median']:.0f} |")
            lines.append("")
        lines += [f"![{label}](img/study2d-{dataset}-{arch}.png)", "",
                  "Dashed line: the perfect sampler's q; dotted: S (left) and B (middle).", ""]
    for dataset in sorted({lbl.split("/")[0] for lbl in result["pieces"]}):
        lines += [f"PacGAN (Lin et al. 2018), {dataset}, as published (their network with a maxout D, Adam 1e-4, "
                  "batch 100, ~400k updates; mean of 10 trials), each row whole:", "",
                  "| PacGAN row | modes | high quality | KL |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in PACGAN[dataset]]
        lines.append("")
    return "\n".join(lines)


def plot(label: str, res: dict[str, Any], floor: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for i, (name, curve) in enumerate(sorted(res["curves"].items())):
        style = {"color": f"C{i % 10}", "ls": "-" if i < 10 else "--", "label": name}
        for ax, col in zip(axes, (0, 1, 2)):
            ax.plot([c[col] for c in curve], [c[3] for c in curve], **style)
    for ax, xlabel in zip(axes, ("steps", "gradient evaluations (products counted)", "wall seconds (1 thread)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("q = modes/K + hq − KL, mean of seeds 0–4")
        ax.axhline(floor, color="k", lw=0.8, ls="--")  # the perfect sampler
    axes[1].axvline(res["budget"], color="k", lw=0.8, ls=":")
    axes[0].axvline(res["steps"], color="k", lw=0.8, ls=":")
    for ax in axes[1:]:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[2].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{label}: quality against steps, compute and time, at the equal-compute choice of each lr")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def report(record: dict[str, Any], out: Path) -> dict[str, Any]:
    pieces = {}
    for dataset in N_MODES:
        for arch in ARCHS:
            res = summarise(record, dataset, arch)
            if res and res["views"]:
                pieces[f"{dataset}/{arch}"] = res
    result = {"date": time.strftime("%Y-%m-%d"), "pieces": pieces,
              "floors": {d: floors(d) for d in {p.split("/")[0] for p in pieces}}}
    for label, res in pieces.items():
        floor = result["floors"][label.split("/")[0]]["q"]["mean"]
        plot(label, res, floor, ROOT / "docs" / "img" / f"study2d-{label.replace('/', '-')}.png")
    (out / "study2d.md").write_text(markdown(result) + "\n")
    (out / "study2d.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="ring")
    ap.add_argument("--archs", default="preset")
    ap.add_argument("--methods", default=",".join([*OPTIMIZERS, *(x for x in LOSSES if x != "ns")]))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=str(ROOT / "runs" / "study2d"))
    ap.add_argument("--out", type=Path, default=RESULTS, help="the results folder (record, json, md)")
    ap.add_argument("--report", action="store_true", help="only write the report from the record")
    ap.add_argument("--quick", action="store_true",
                    help="ring, preset MLP, adam and consensus at the centre lr, 1/10 budget, 2 seeds")
    args = ap.parse_args()
    args.budget_scale = 0.1 if args.quick else 1.0
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("study2d-quick-runs.jsonl" if args.quick else "study2d-runs.jsonl")
    if args.quick:
        path.unlink(missing_ok=True)
        args.datasets, args.archs, args.methods = "ring", "preset", "adam,consensus"
        args.work = str(Path(args.work) / "quick")
    record = load_record(path)
    t0 = time.time()
    print(f"load average at the start: {load_average()}", flush=True)
    if not args.report:
        for dataset in args.datasets.split(","):
            for arch in args.archs.split(","):
                study(dataset, arch, args.methods.split(","), args, record, path)
    result = quick_check(record, args.out) if args.quick else report(record, args.out)
    print(f"done in {time.time() - t0:.0f} s; load average {load_average()}", flush=True)
    return 0 if result.get("sane", True) else 1



def quick_check(record: dict[str, Any], out: Path) -> dict[str, Any]:
    """The pipeline check: metrics in range, and each view at the step the protocol puts it (Adam spends 2
    gradient evaluations per step, so both views meet at S; consensus spends 3, so its compute view is earlier)."""
    problems = []
    points = {}
    for r in record.values():
        s, k = r["steps"], N_MODES[r["dataset"]]
        for c in r["curve"]:
            if not (0 <= c[3] <= k and 0 <= c[4] <= 1 and math.isfinite(c[5])):
                problems.append(f"{r['key']}: metrics out of range {c}")
        at_budget = [c for c in r["curve"] if c[1] <= 2 * s]
        points[r["key"]] = at_budget[-1][0] if at_budget else None
        expected = s if r["method"] == "adam" else None
        if r["status"] != "completed":
            problems.append(f"{r['key']}: {r['status']}")
        elif expected is not None and points[r["key"]] != expected:
            problems.append(f"{r['key']}: equal-compute point at step {points[r['key']]}, expected {s}")
        elif r["method"] == "consensus" and not (points[r["key"]] or s) < s:
            problems.append(f"{r['key']}: consensus's equal-compute point is not before step {s}")
    result = {"date": time.strftime("%Y-%m-%d"), "runs": len(record), "compute_view_step": points,
              "problems": problems, "sane": not problems and len(record) == 4}
    (out / "study2d-quick.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    sys.exit(main())
