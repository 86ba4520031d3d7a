"""The report of the protocol-v2 study (``study2d.py``): per dataset × architecture, each view's choice, the
seeds' mean ± standard error, paired t-tests against the view's best, the curves and the perfect sampler's floor;
everything recomputed from the run record, so the report and the record cannot disagree."""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from bench_quality2d import mean_se, preset
from study2d import (
    ALPHA,
    ARCHS,
    EVAL_SEEDS,
    LOSSES,
    N_MODES,
    OPTIMIZERS,
    PACGAN,
    ROOT,
    SELECT_SEEDS,
    Point,
    at_view,
    choose,
    method_of,
)


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


def seed_stats(scores: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard error over the seeds of each score (modes, hq, KL, q)."""
    return {key: dict(zip(("mean", "se"), mean_se([x[key] for x in scores]))) for key in ("modes", "hq", "kl", "q")}


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
                "kind": m.kind, "optimizer": m.optim or preset(dataset)["optim"]["name"],
                "lr": Point(dataset, arch, name, k, beta, 0).lr(m.centre), "k": k, "beta1": beta,
                "edge": k in (min(complete), max(complete)), "grid": [min(complete), max(complete)],
                "selection_q": q_sel, "per_seed_q": [x["q"] for x in scores],
                **seed_stats(scores),
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
    if p >= ALPHA:
        return f"within noise (p {p:.2f})"
    return "worse (p < 0.001)" if p < 0.001 else f"worse (p {p:.3f})"


def markdown(result: dict[str, Any]) -> str:
    lines = ["## Study protocol v2 (2-D mixtures)", "",
             "Written by `python benchmarks/study2d.py --report` from the run record "
             "`benchmarks/results/study2d-runs.jsonl`; the protocol is in the script's docstring: lr from a "
             "7-value log grid over 2 decades (× β1 ∈ {0, 0.5} for Adam-based rules) chosen per view on the "
             "held-out seeds 100 and 101 by the mean of q = modes/K + hq − KL, widened at an edge; seeds 0–4 at "
             "the chosen point, mean ± standard error; p: two-sided paired t-test on q against the view's best. "
             "A loss row names its optimizer: the preset's (consensus on the ring and grid), or alternating Adam "
             "(protocol point 6, an amendment made after WGAN-GP scored the floor at every lr under consensus; "
             "the NS loss's rows are the consensus and adam rows). LEAD's rows are a re-run: its first 37 runs fed "
             "Adam the coupling divided by the lr, 1/η times the authors' code's weight; that scale was fixed "
             "(an adaptive base gets g + α·c, α 0.6) and those runs kept apart in "
             "`benchmarks/results/study2d-runs-lead-alpha-over-lr.jsonl`.",
             ""]
    lines += plan_markdown(result.get("plan"), result.get("runs_done", {}))
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
                label_ = name if r["kind"] == "optim" else f"{name.split('+')[0]} (loss, {r['optimizer']})"
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


def plan_markdown(plan: dict[str, Any] | None, done: dict[str, float]) -> list[str]:
    """The protocol's cost per dataset × architecture, from each method's measured CPU seconds per step."""
    if not plan or not plan.get("pieces"):
        return []
    lines = [f"**Cost of the protocol** (`python benchmarks/study2d.py --plan`, {plan['date']}: each method's CPU "
             "seconds per step from runs of 10 and 60 steps, 1 thread, on the shared machine, so ±30%; runs = "
             "the selection grid on the 2 held-out seeds before any widening, plus 5–10 evaluation runs; ACGD's "
             "step cost follows its CG iteration count, which changes along training, so its row is the roughest):",
             "",
             "| dataset / architecture | steps S | runs | CPU-hours | costliest methods (CPU-h) | runs done |",
             "|---|---:|---:|---:|---|---:|"]
    total = [0.0, 0.0]
    for label, piece in plan["pieces"].items():
        methods = piece["methods"]
        runs = sum(m["select_runs"] for m in methods.values()) + 5 * len(methods)
        top = sorted(methods.items(), key=lambda kv: -kv[1]["cpu_hours"][1])[:3]
        lo, hi = piece["cpu_hours"]
        total = [total[0] + lo, total[1] + hi]
        lines.append(f"| {label} | {piece['steps']:,} | {runs:,}–{runs + 5 * len(methods):,} | {lo:.1f}–{hi:.1f} | "
                     + ", ".join(f"{n} {m['cpu_hours'][1]:.1f}" for n, m in top) + f" | {done.get(label, 0):,} |")
    lines += [f"| **all** | | | **{total[0]:.0f}–{total[1]:.0f}** | | {sum(done.values()):,} |", ""]
    return lines


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
    plan_path = out / "study2d-plan.json"
    result = {"date": time.strftime("%Y-%m-%d"), "pieces": pieces,
              "floors": {d: floors(d) for d in {p.split("/")[0] for p in pieces}},
              "plan": json.loads(plan_path.read_text()) if plan_path.exists() else None,
              "runs_done": {f"{d}/{a}": sum(r["dataset"] == d and r["arch"] == a for r in record.values())
                            for d in N_MODES for a in ARCHS}}
    for label, res in pieces.items():
        floor = result["floors"][label.split("/")[0]]["q"]["mean"]
        plot(label, res, floor, ROOT / "docs" / "img" / f"study2d-{label.replace('/', '-')}.png")
    (out / "study2d.md").write_text(markdown(result) + "\n")
    (out / "study2d.json").write_text(json.dumps(result, indent=1) + "\n")
    return result
