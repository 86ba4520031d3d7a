"""Regenerate ``docs/benchmarks.md`` (and its plots in ``docs/img/``) from ``benchmarks/results/*.json``.

    python benchmarks/report.py

Reads only the committed full-suite results (never ``*-quick.json``); the studies (``quality2d``, ``mnist``)
contribute the markdown sections their scripts write (``results/<part>.md``). Every number in the document
comes from a result file, so the document and the results cannot disagree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs"
IMG = DOCS / "img"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def goal_row(goal: str, measured: str, met: bool | None) -> list[Any]:
    return [goal, measured, "—" if met is None else ("met" if met else "**missed**")]


# ----------------------------------------------------------------------------------------- sections
def section_trainer(r: dict[str, Any] | None, goals: list[list[Any]]) -> str:
    out = ["## 1. Trainer overhead", ""]
    if r is None:
        return "\n".join(out + ["Not measured yet: `python benchmarks/bench_trainer.py`.", ""])
    s = r["seconds_per_step"]
    q = r.get("ratio_quartiles", [])
    out += [
        "A saddlepoint training step (`setup` + the per-step work of `Trainer.run`: game step, finiteness check,"
        " scheduled JSONL logging) against the textbook alternating DCGAN loop written in the benchmark"
        f" ({r['setup']['model']}, batch {r['setup']['batch']}, NS loss, Adam, no evaluation, no EMA),"
        f" interleaved in blocks of {r['setup']['block']} steps over {r['setup']['rounds']} rounds.",
        "",
        table(["bare PyTorch s/step", "saddlepoint s/step", "ratio (median of paired rounds)", "quartiles", "goal"],
              [[s["bare"], s["saddlepoint"], r["ratio_median"], ", ".join(fmt(x) for x in q), f"≤ {r['goal']}"]]),
        "",
        "What makes it cheap: the closure computes D(x) and the penalties only when the discriminator's loss is"
        " used, and reuses G(z) and its graph for the generator's evaluation while G is unchanged"
        " (`saddlepoint/train/closure.py`), bit-identical to evaluating everything every time (tested).",
        "",
    ]
    goals.append(goal_row("trainer step ÷ bare loop ≤ 1.03", fmt(r["ratio_median"]), r["ratio_median"] <= 1.03))
    return "\n".join(out)


def plot_optim(r: dict[str, Any]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return None
    problems = [p for p in ("mlp", "dcgan28") if p in r.get("steps", {})]
    if not problems:
        return None
    names = sorted({v for p in problems for v in r["steps"][p]["variants"]},
                   key=lambda n: r["steps"][problems[-1]]["variants"].get(n, {}).get("ratio_to_adam", 0))
    fig, ax = plt.subplots(figsize=(8, 5))
    height = 0.8 / len(problems)
    for k, p in enumerate(problems):
        variants = r["steps"][p]["variants"]
        ys = [i + k * height for i in range(len(names))]
        ax.barh(ys, [variants.get(n, {}).get("ratio_to_adam", float("nan")) for n in names], height=height,
                label={"mlp": "2-D MLP GAN", "dcgan28": "DCGAN-28"}[p])
    ax.set_yticks([i + height * (len(problems) - 1) / 2 for i in range(len(names))], names)
    ax.set_xscale("log")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xlabel("step time ÷ simultaneous Adam (log scale)")
    ax.legend()
    ax.set_title("Cost of one game step per optimizer")
    fig.tight_layout()
    IMG.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG / "optim_step_ratios.png", dpi=110)
    plt.close(fig)
    return "img/optim_step_ratios.png"


def section_optim(r: dict[str, Any] | None, goals: list[list[Any]]) -> str:
    out = ["## 2. Optimizer cost", ""]
    if r is None:
        return "\n".join(out + ["Not measured yet: `python benchmarks/bench_optim.py --cgds`.", ""])
    out += [f"- {note}" for note in r.get("notes", [])] + [""]
    steps = r.get("steps", {})
    names = sorted({v for p in steps.values() for v in p["variants"]})
    rows = []
    for n in names:
        row: list[Any] = [n]
        for p in ("mlp", "dcgan28"):
            v = steps.get(p, {}).get("variants", {}).get(n)
            counts = (v or {}).get("counts_per_step", {})
            row += [None if v is None else v.get("ratio_to_adam"),
                    None if v is None else f"{fmt(counts.get('grad'))} + {fmt(counts.get('hvp'))}"]
        rows.append(row)
    out += [table(["method", "MLP ÷ Adam", "MLP grads + products", "DCGAN-28 ÷ Adam", "DCGAN-28 grads + products"],
                  rows), ""]
    for problem, res in steps.items():
        for again in res.get("remeasured", []):
            out += [f"- {problem}: rows {', '.join(again['variants'])} re-measured {again['date']} by "
                    f"`{again['command']}` (commit {again.get('git', {}).get('commit', '?')}; simultaneous Adam "
                    f"{1e3 * again['adam_seconds_median']:.1f} ms/step in that run, "
                    f"{1e3 * res['adam_seconds_median']:.1f} ms/step in the full run); ratios are to the Adam "
                    "step timed next to each step, so the rows compare across the two runs."]
    if any(res.get("remeasured") for res in steps.values()):
        out.append("")
    image = plot_optim(r)
    if image:
        out += [f"![step-time ratios]({image})", ""]
    eg = steps.get("dcgan28", {}).get("variants", {}).get("extragradient")
    if eg:
        goals.append(goal_row("extragradient ≤ 2.05× simultaneous Adam (DCGAN-28)", fmt(eg["ratio_to_adam"]),
                              eg["ratio_to_adam"] <= 2.05))
    checked = [(problem, label, v["within_paper_count"]) for problem, res in steps.items()
               for label, v in res["variants"].items() if v.get("within_paper_count") is not None]
    if checked:
        over = sorted({label for _, label, ok in checked if not ok})
        exact_over = [x for x in over if "hvp=fd" not in x]
        goals.append(goal_row("no method uses more products than its paper's count (exact products, as in the papers)",
                              f"{len(checked) - sum(not ok for *_, ok in checked)}/{len(checked)} rows within"
                              + (f"; over: {', '.join(over)}" if over else ""), not exact_over))
    prod = r.get("products", {}).get("dcgan28", {}).get("ratio_to_gradient")
    if prod:
        out += ["Second-derivative products on DCGAN-28, ÷ one gradient (forward + backward):", "",
                table(["product", "÷ gradient"], [[k, v] for k, v in prod.items()]), ""]
        worst = max(prod["mixed_exact_Dxy_v"], prod["mixed_exact_Dyx_u"])
        dyx = r.get("dyx", {}).get("ratio_to_gradient", {})
        # forward_mode: the tangent-only chain pass where measured (DCGAN-28's G is a chain), else torch.func.jvp
        forward = dyx.get("e_chain_tangent", dyx.get("c_forward_mode_jvp"))
        if forward is not None:
            worst = max(prod["mixed_exact_Dxy_v"], min(prod["mixed_exact_Dyx_u"], forward))
        goals.append(goal_row("mixed product ≤ 0.7× a gradient",
                              f"D_xy·v {fmt(prod['mixed_exact_Dxy_v'])}, D_yx·u {fmt(prod['mixed_exact_Dyx_u'])}"
                              + (f" ({fmt(forward)} with forward_mode)" if forward is not None else ""),
                              worst <= 0.7))
    dyx_res = r.get("dyx")
    if dyx_res:
        out += ["D_yx·u on DCGAN-28 through the generator's samples (part dyx; ÷ one gradient; "
                "`forward_mode: true` uses the chain row, or the forward-mode row for a generator that is not a "
                "chain):", "",
                table(["way", "÷ gradient", "relative difference to the default"],
                      [[k, v, dyx_res["relative_difference_to_current"].get(k)]
                       for k, v in dyx_res["ratio_to_gradient"].items()]), ""]
    cg = r.get("cgds", {})
    runs = cg.get("runs", [])
    if runs:
        out += [f"ACGD against the CGDs package {cg.get('version', '')} ({cg.get('model')}, batch {cg.get('batch')},"
                f" {cg.get('loss')}); {cg.get('tolerance_conversion', '')}:", ""]
        names = dict.fromkeys(["cg", "cr", "cr+cold", "ours", *(k for run in runs for k in run.get("krylov", []))])
        variants = [v for v in names if any(f"{v}_seconds" in run for run in runs)]
        rows, ratios = [], []
        for run in runs:
            for v in variants:
                ratio = run.get(f"paired_ratio_{v}_to_cgds", run.get(f"ratio_{v}_to_cgds"))
                if ratio is None:
                    continue
                ratios.append(ratio)
                when = (f"{run['date']}, {run.get('closure', '')}" if "date" in run
                        else "earlier (1 thread, loaded machine)")
                rows.append([when, run.get("cgds_tol"), run.get("our_tol"), v, ratio,
                             fmt(_median(run.get(f"{v}_iterations"))), fmt(_median(run.get("cgds_iterations"))),
                             fmt(_median(run.get(f"{v}_products"))), fmt(_median(run.get("cgds_products")))])
        out += [table(["run", "CGDs tol", "our tol", "ours (krylov, start; +fwd: forward_mode)",
                       "ours ÷ CGDs (paired median)", "our its", "CGDs its", "our products", "CGDs products"],
                      rows), ""]
        best = min(ratios)
        goals.append(goal_row("ACGD ≤ 0.7× the CGDs package's ACGD", fmt(best), best <= 0.7))
    out += ["Finite-difference accuracy and the per-method details: [optimizers.md](optimizers.md).", ""]
    return "\n".join(out)


def _median(xs: list[float] | None) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def section_metrics(r: dict[str, Any] | None, goals: list[list[Any]]) -> str:
    out = ["## 3. Metric cost and agreement", ""]
    if r is None:
        return "\n".join(out + ["Not measured yet: `python benchmarks/bench_metrics.py`.", ""])
    f, floor = r["fid_benchmark"], r["mnist_floor"]
    out += [table(["FID from features", "ours (eigen form) s", "scipy sqrtm s", "ratio (matrix part)",
                   "relative difference"],
                  [[f"{f['n']:,} × {f['d']:,}", f["seconds_ours"], f["seconds_scipy_sqrtm"], f["ratio_matrix_part"],
                    f["relative_difference"]]]), "",
            f"MNIST real-versus-real floor in the shipped classifier's features ({floor.get('features', '')}):", "",
            table(["comparison", "FID"], [
                ["random halves, 5,000 vs 5,000", floor["fid_random_halves_5000_vs_5000"]],
                ["random 2,500 vs 2,500", floor["fid_random_2500_vs_2500"]],
                ["file-order halves (digit style drifts through the file)", floor["fid_file_halves_5000_vs_5000"]]]),
            ""]
    ec = r.get("eval_cost", {})
    if ec:
        out += [f"Evaluation at the default settings: generation {fmt(ec.get('seconds_generate'))} s, metrics"
                f" {fmt(ec.get('seconds_metrics_cold'))} s cold (real statistics computed) and"
                f" {fmt(ec.get('seconds_metrics_warm'))} s warm (cached by a hash of their settings).", ""]
    goals.append(goal_row("FID eigen form agrees with scipy sqrtm", fmt(f["relative_difference"]),
                          f["relative_difference"] <= 1e-6))
    return "\n".join(out)


def included(name: str, how: str) -> str:
    """A script's markdown section (``results/<name>.md``), its own headings moved one level down."""
    path = RESULTS / f"{name}.md"
    body = path.read_text().strip() if path.exists() else f"Not measured yet: `{how}`."
    return "\n".join(("#" + line) if line.startswith("#") else line for line in body.splitlines()) + "\n"


def section_include(title: str, name: str, how: str) -> str:
    return f"## {title}\n\n{included(name, how)}"


def section_distributed(r: dict[str, Any] | None) -> str:
    out = ["## 7. Data parallel", ""]
    if r is None:
        return "\n".join(out + ["Not measured yet: `python benchmarks/bench_distributed.py`.", ""])
    rows = [[name, e["one_process"]["median_s"], e["two_processes_gloo"]["median_s"], e["ratio_two_over_one"],
             e.get("sync_bn")] for name, e in r.items()]
    out += ["Same global batch (64), DCGAN-28: 2 gloo processes × 1 thread ÷ 1 process × 2 threads.", "",
            table(["optimizer", "1 × 2 threads s", "2 × 1 thread s", "ratio", "synchronised BatchNorm"], rows), "",
            "More in [distributed.md](distributed.md).", ""]
    return "\n".join(out)


def main() -> None:
    trainer, optim, metrics = load("trainer"), load("optim"), load("metrics")
    machine = (trainer or {}).get("machine") or {}
    goals: list[list[Any]] = []
    body = [
        section_trainer(trainer, goals),
        section_optim(optim, goals),
        section_metrics(metrics, goals),
        section_include("4. Quality on 2-D mixtures", "quality2d", "python benchmarks/bench_quality2d.py"),
        section_include("5–6. Stacked-MNIST and MNIST", "mnist", "python benchmarks/bench_mnist.py"),
        section_distributed(load("distributed")),
        section_include("8. Discriminator-driven sampling", "refine", "python benchmarks/bench_refine.py")
        + "\n![quality against cost](img/refine-cost.png)\n\n![ring samples](img/refine-ring.png)\n\n"
        "![grid samples](img/refine-grid.png)\n\nMore in [sampling.md](sampling.md).\n",
        section_include("9. The default job", "default-search", "python benchmarks/search_default.py"),
        section_include("10. CIFAR-10", "cifar10", "python benchmarks/bench_cifar10.py --budget 10"),
        section_include("11. Study protocol v2 on the 2-D mixtures", "study2d",
                        "python benchmarks/study2d.py --datasets ring --archs preset")
        + "\n" + included("study2d-transfer", "python benchmarks/study2d_transfer.py"),
        section_include("Measurements moved out of docstrings (issue 14)", "docstring-figures",
                        "benchmarks/results/docstring-figures.md"),
    ]
    head = [
        "# Benchmarks",
        "",
        "<!-- generated by benchmarks/report.py from benchmarks/results/*.json; edit those scripts, not this file -->",
        "",
        f"Machine: {machine.get('cores', 2)} CPU cores, torch {machine.get('torch', (optim or {}).get('torch', '?'))},"
        f" Python {machine.get('python', (optim or {}).get('python', '?'))}, no GPU. Medians and ratios are"
        " measured side by side in one run (interleaved, so machine load hits both sides of a ratio alike).",
        "",
        "Reproduce everything with `python benchmarks/run.py` (hours), a sanity-checked subset with"
        " `python benchmarks/run.py --quick` (minutes; writes `results/<part>-quick.json`, never this document),"
        " one part with `python benchmarks/run.py --parts trainer` or its script `python benchmarks/bench_<part>.py`.",
        "",
        "## Goals at a glance",
        "",
        "Goals from the issues, against the committed results (the study sections below state their own goals).",
        "",
        table(["goal", "measured", ""], goals),
        "",
    ]
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.md").write_text("\n".join(head + body).rstrip() + "\n")
    print(f"wrote {DOCS / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
