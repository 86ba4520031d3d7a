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
   usual GAN step size, ``Method.centre``), × β1 ∈ {0, 0.5} for the Adam-based rules; each point run on the
   held-out seeds 100 and 101. For each view separately the point with the highest mean q wins. If a winner lies
   on the lr grid's edge, the grid grows by one value beyond it (up to 3 times on each side).
5. **Report.** Seeds 0–4 at each view's chosen point: mean ± standard error of modes, hq, KL and q. Every
   method is compared with the view's best by a two-sided paired t-test on q across the seeds (same seed, same
   initial weights and data stream); "within noise" when p ≥ 0.05. Beside them: the perfect sampler's floor
   (2,500 points drawn from the data itself, 200 draws, through the same metric) and PacGAN's published rows,
   quoted whole.
6. **Amendment (2026-12-04, after the ring's WGAN-GP rows).** Under the preset's optimizer (consensus, chosen
   for the NS loss) WGAN-GP scored the floor at all 13 lrs (1e-5..1e-2): its critic stays flat (D's loss ≈ the
   GP weight 10), while under alternating Adam the same loss covers the modes. A loss compared only under an
   optimizer tuned for another loss is confounded, so every loss is also run under alternating Adam
   (``<loss>+adam``; the NS row there is ``adam``), by points 1–5. The rows under the preset's optimizer stay.

Finished runs are appended to ``benchmarks/results/study2d-runs.jsonl`` (the record across sessions: a run there
is never redone), so the study can be run in pieces:

    python benchmarks/study2d.py --datasets ring --archs preset                  # one piece (CPU-hours)
    python benchmarks/study2d.py --report                                        # tables and plots from the record
    python benchmarks/study2d.py --plan --datasets ring,grid --archs preset,pacgan   # runs and CPU-hours per piece
    python benchmarks/study2d.py --quick                                         # a one-minute pipeline check

The report goes to ``benchmarks/results/study2d.{json,md}`` and ``docs/img/study2d-<dataset>-<arch>.png``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"

from bench_quality2d import N_MODES, _init_worker, load_average, preset  # noqa: E402

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
    optim: str | None = None  # a loss row's optimizer (None: the preset's)


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
    # the authors' 8-Gaussian code: Adam (β (0.5, 0.9) for G, (0.55, 0.9) for D) fed g + 0.6·c, c unscaled by 1/η
    "lead": _adam("lead", base="adam", coupling_alpha=0.6),
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
# amendment (2026-12-04, point 6): the losses again under alternating Adam, whose NS row is ``adam``
LOSSES.update({f"{name}+adam": replace(LOSSES[name], optim="adam") for name in ("wgan-gp", "hinge", "lsgan")})
VIEWS = ("steps", "compute")
#: the order the study runs them in: cheap methods first, so that a study cut short has the most rows
RUN_ORDER = ("sgd", "momentum", "nesterov", "adam", "rmsprop", "optimistic", "lookahead", "past-extragradient",
             "extragradient", "consensus", "wgan-gp", "hinge", "lsgan", "wgan-gp+adam", "hinge+adam", "lsgan+adam",
             "sga", "lead", "follow-ridge", "acgd")
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
        optim = base["optim"] if m.optim is None else {"name": m.optim}
        cfg["optim"] = {**optim, "lr": p.lr(m.centre)}
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
def select(dataset: str, arch: str, name: str, args: argparse.Namespace, record: dict[str, Any],
           path: Path) -> dict[str, tuple[int, float | None, float]]:
    """Each view's (k, β1, held-out q) for a method: run its grid on the held-out seeds; while a view's winner
    sits on the grid's edge (and the grid has grown fewer than MAX_WIDEN times that way), extend it there."""
    b, s = budget(dataset, args.budget_scale)
    grid = list(range(-HALF, HALF + 1))
    while True:
        run_points([(p, s) for p in grid_points(dataset, arch, name, grid, SELECT_SEEDS)], record, path,
                   Path(args.work), args.workers)
        picks = {view: choose(dataset, arch, name, grid, record, b, s, view) for view in VIEWS}
        low = any(k == min(grid) for k, _, _ in picks.values()) and min(grid) > -HALF - MAX_WIDEN
        high = any(k == max(grid) for k, _, _ in picks.values()) and max(grid) < HALF + MAX_WIDEN
        if not (low or high):
            return picks
        grid = [min(grid) - 1] * low + grid + [max(grid) + 1] * high


def study(dataset: str, arch: str, names: list[str], args: argparse.Namespace, record: dict[str, Any],
          path: Path) -> None:
    """The protocol for one dataset × architecture, one method after another (selection, then its seeds), so
    that a study cut short has whole rows."""
    b, s = budget(dataset, args.budget_scale)
    print(f"== {dataset} / {arch}: B = {b} gradient evaluations, S = {s} steps", flush=True)
    eval_seeds = EVAL_SEEDS[:2] if args.quick else EVAL_SEEDS
    for name in names:
        print(f"-- {name}", flush=True)
        if args.quick:  # no selection: the centre lr, β1 0.5
            picks = {view: (0, 0.5 if method_of(name).adam_based else None, 0.0) for view in VIEWS}
        else:
            picks = select(dataset, arch, name, args, record, path)
        run_points([(Point(dataset, arch, name, k, beta, seed), s) for k, beta, _ in picks.values()
                    for seed in eval_seeds], record, path, Path(args.work), args.workers)


# ---------------------------------------------------------------------------------- the plan
_WARM: list[bool] = []


def step_cpu_seconds(dataset: str, arch: str, name: str) -> float:
    """CPU seconds per training step of a method (its centre lr; evaluation as in the study), from two runs of
    10 and 60 steps in this process (1 thread): the difference excludes set-up and the cold first steps."""
    import torch

    torch.set_num_threads(1)
    m = method_of(name)
    if not _WARM:  # the first run in a process pays the imports: not a step cost
        train_point(config(Point(dataset, arch, "adam", 0, 0.5, 0), 2), str(ROOT / "runs" / "study2d-plan"))
        _WARM.append(True)
    spent = []
    for steps in (10, 60):
        cfg = config(Point(dataset, arch, name, 0, 0.5 if m.adam_based else None, 0), steps)
        cfg["eval"]["every"] = cfg["log"]["every"] = 20 if steps == 60 else 10  # one evaluation per 20–30 steps
        t0 = time.process_time()
        train_point(cfg, str(ROOT / "runs" / "study2d-plan"))
        spent.append(time.process_time() - t0)
    return max(spent[1] - spent[0], 0.0) / 50


def plan(datasets: list[str], archs: list[str], names: list[str], out: Path) -> dict[str, Any]:
    """Runs and CPU-hours of the protocol per dataset × architecture, from each method's measured step cost
    (cached in ``study2d-plan.json``): the selection grid (7 lrs × β1 values × 2 held-out seeds, before any
    widening) and 5–10 evaluation runs (one or two chosen points), each S steps."""
    path = out / "study2d-plan.json"
    result = json.loads(path.read_text()) if path.exists() else {"step_cpu_seconds": {}, "pieces": {}}
    costs = result["step_cpu_seconds"]
    for dataset in datasets:
        for arch in archs:
            _, s = budget(dataset)
            rows = {}
            for name in names:
                key = f"{dataset}|{arch}|{name}"
                if key not in costs:
                    costs[key] = step_cpu_seconds(dataset, arch, name)
                    path.write_text(json.dumps(result, indent=1) + "\n")
                select = (2 * HALF + 1) * (2 if method_of(name).adam_based else 1) * len(SELECT_SEEDS)
                per_run = costs[key] * s
                rows[name] = {"select_runs": select, "cpu_s_per_run": per_run,
                              "cpu_hours": [(select + n) * per_run / 3600 for n in (5, 10)]}
                print(f"{key}: {1000 * costs[key]:.1f} CPU-ms/step, {per_run:.0f} CPU-s per run of {s} steps, "
                      f"{select} + 5..10 runs: {rows[name]['cpu_hours'][0]:.2f}–{rows[name]['cpu_hours'][1]:.2f} "
                      "CPU-h", flush=True)
            total = [sum(r["cpu_hours"][i] for r in rows.values()) for i in (0, 1)]
            result["pieces"][f"{dataset}/{arch}"] = {"steps": s, "methods": rows, "cpu_hours": total}
            print(f"== {dataset}/{arch}: {total[0]:.1f}–{total[1]:.1f} CPU-hours", flush=True)
    result["date"] = time.strftime("%Y-%m-%d")
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="ring")
    ap.add_argument("--archs", default="preset")
    ap.add_argument("--methods", default=",".join(RUN_ORDER),
                    help="optimizers (loss ns) and losses (the preset's optimizer, or alternating Adam for "
                         "<loss>+adam; ns is the consensus row, or the adam row)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=str(ROOT / "runs" / "study2d"))
    ap.add_argument("--out", type=Path, default=RESULTS, help="the results folder (record, json, md)")
    ap.add_argument("--plan", action="store_true", help="measure each method's step cost; print runs and CPU-hours")
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
    if args.plan:
        plan(args.datasets.split(","), args.archs.split(","), args.methods.split(","), args.out)
        return 0
    record = load_record(path)
    t0 = time.time()
    print(f"load average at the start: {load_average()}", flush=True)
    if not args.report:
        for dataset in args.datasets.split(","):
            for arch in args.archs.split(","):
                study(dataset, arch, args.methods.split(","), args, record, path)
    if args.quick:
        result = quick_check(record, args.out)
    else:
        from study2d_report import report

        result = report(record, args.out)
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
