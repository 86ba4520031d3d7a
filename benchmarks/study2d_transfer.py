"""Does the 2-D study's ranking survive a change of network? (issue 16, a check, not protocol v2)

Protocol v2 asks for every row on PacGAN's architecture as well (G 4×400 with BatchNorm, D 3×200), which its
plan puts at 146–178 CPU-hours: more than this machine gives. This script asks the narrower question a reader
of a verdict asks first: run the rows that decide a verdict on PacGAN's network, at the (lr, β1) protocol v2
chose for them on the preset MLP, on the same evaluation seeds, at both views, and see whether their order and
their distance to the perfect sampler hold. Nothing is re-tuned for the new network, so a row that loses here
may be mis-tuned there rather than worse: the table says so, and it is no substitute for the full study.

    python benchmarks/study2d_transfer.py --datasets ring,grid --methods adam,consensus
    python benchmarks/study2d_transfer.py --report      # only the tables, from the record

Record: ``results/study2d-transfer-runs.jsonl`` (one line per run, the study's own format and keys, arch
``pacgan``); tables: ``results/study2d-transfer.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench_quality2d import load_average
from study2d import (
    EVAL_SEEDS,
    N_MODES,
    RESULTS,
    ROOT,
    VIEWS,
    Point,
    at_view,
    budget,
    load_record,
    run_points,
)
from study2d_report import paired_p, seed_stats, summarise, verdict

ARCH = "pacgan"


def chosen(study: dict[str, Any], dataset: str, names: list[str]) -> dict[str, dict[str, tuple[int, Any]]]:
    """Each method's (k, β1) per view, as protocol v2 chose it on the preset MLP (rows not finished there: none)."""
    res = summarise(study, dataset, "preset") or {"views": {}}
    return {name: {view: (row["k"], row["beta1"]) for view in VIEWS
                   if (row := res["views"].get(view, {}).get("rows", {}).get(name))}
            for name in names}


def score(dataset: str, names: list[str], picks: dict[str, Any], study: dict[str, Any],
          record: dict[str, Any]) -> dict[str, Any]:
    """Per view: each method on PacGAN's network (mean ± s.e. over the seeds, paired test against the view's best)
    beside the same method on the preset MLP."""
    b, s = budget(dataset)
    k_modes = N_MODES[dataset]
    out: dict[str, Any] = {}
    for view in VIEWS:
        rows: dict[str, Any] = {}
        for name in names:
            if view not in picks[name]:
                continue
            k, beta = picks[name][view]
            runs = {arch: [rec.get(Point(dataset, arch, name, k, beta, seed).key(s)) for seed in EVAL_SEEDS]
                    for arch, rec in (("preset", study), (ARCH, record))}
            if any(r is None for r in runs[ARCH]):
                continue
            row: dict[str, Any] = {"lr": runs[ARCH][0]["lr"], "beta1": beta, "k": k,
                                   "diverged": sum(r["status"] != "completed" for r in runs[ARCH])}
            for arch, evals in runs.items():
                scores = [at_view(e, view, b, s, k_modes) for e in evals]
                row[arch] = {**seed_stats(scores), "per_seed_q": [x["q"] for x in scores]}
            rows[name] = row
        if rows:
            best = max(rows, key=lambda n: rows[n][ARCH]["q"]["mean"])
            for name, row in rows.items():
                row["p_vs_best"] = (None if name == best
                                    else paired_p(row[ARCH]["per_seed_q"], rows[best][ARCH]["per_seed_q"]))
                row["p_vs_preset_mlp"] = paired_p(row[ARCH]["per_seed_q"], row["preset"]["per_seed_q"])
            out[view] = {"best": best, "rows": rows}
    return out


def _cell(m: dict[str, Any], key: str, pct: bool = False) -> str:
    f = 100.0 if pct else 1.0
    unit = "%" if pct else ""
    digits = 1 if pct else (2 if key == "modes" else 3)
    return f"{f * m[key]['mean']:.{digits}f} ± {f * m[key]['se']:.{digits}f}{unit}"


def markdown(result: dict[str, Any]) -> str:
    lines = ["## Transfer check: the deciding rows on PacGAN's architecture", "",
             "Each row runs on PacGAN's network (G 4×400 with BatchNorm, D 3×200, ReLU) at the (lr, β1) that "
             "protocol v2 chose for it **on the preset MLP**, seeds 0–4, with the study's budget, metrics and views. "
             "Nothing is re-tuned for this network, so this checks whether a verdict rests on one network; it is "
             "not the protocol's second-architecture study (146–178 CPU-hours by its plan). \"vs best\" is a paired "
             "t-test across seeds against the view's best row on PacGAN's network; \"vs MLP\" pairs the same seeds "
             "across the two networks.", ""]
    for dataset, views in result["pieces"].items():
        b, s = budget(dataset)
        for view, res in views.items():
            what = f"{s:,} steps" if view == "steps" else f"{b:,} gradient evaluations"
            lines += [f"### {dataset.capitalize()}, equal {view} ({what})", "",
                      "| method | lr | β1 | modes | high quality | KL | q (PacGAN's network) | vs best | "
                      "q (preset MLP) | vs MLP |", "|---|---|---|---|---|---|---|---|---|---|"]
            for name, row in sorted(res["rows"].items(), key=lambda kv: -kv[1][ARCH]["q"]["mean"]):
                p, mlp = row[ARCH], row["preset"]
                vs_mlp = row["p_vs_preset_mlp"]
                beta = "–" if row["beta1"] is None else f"{row['beta1']:g}"
                div = f", {row['diverged']}/5 diverged" if row["diverged"] else ""
                lines.append(
                    f"| {name} | {row['lr']:.3g} | {beta} | {_cell(p, 'modes')} | {_cell(p, 'hq', True)} | "
                    f"{_cell(p, 'kl')} | {_cell(p, 'q')} | {verdict(row, res['best'], name)}{div} | "
                    f"{_cell(mlp, 'q')} | p {vs_mlp:.2g} |")
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="ring,grid")
    ap.add_argument("--methods", default="adam,consensus")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=str(ROOT / "runs" / "study2d-transfer"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--report", action="store_true", help="only write the tables from the record")
    args = ap.parse_args()
    study = load_record(args.out / "study2d-runs.jsonl")
    path = args.out / "study2d-transfer-runs.jsonl"
    record = load_record(path)
    names = args.methods.split(",")
    t0 = time.time()
    print(f"load average at the start: {load_average()}", flush=True)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "arch": ARCH, "pieces": {}}
    for dataset in args.datasets.split(","):
        picks = chosen(study, dataset, names)
        if not args.report:
            _, s = budget(dataset)
            print(f"== {dataset} / {ARCH}: {picks}", flush=True)
            points = [(Point(dataset, ARCH, name, k, beta, seed), s) for name in names
                      for k, beta in dict.fromkeys(picks[name].values()) for seed in EVAL_SEEDS]
            run_points(points, record, path, Path(args.work), args.workers)
        scored = score(dataset, names, picks, study, record)
        if scored:
            result["pieces"][dataset] = scored
    (args.out / "study2d-transfer.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "study2d-transfer.md").write_text(markdown(result) + "\n")
    print(markdown(result))
    print(f"done in {time.time() - t0:.0f} s; load average {load_average()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
