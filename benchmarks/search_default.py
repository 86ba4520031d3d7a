"""The default job's search (issue 16): which settings of `saddlepoint train` (no arguments) reach the lowest FID
within 3 minutes on 2 idle cores.

The default job trains a GAN on the 10,000 MNIST digits shipped with the package and is what a newcomer sees
first. Goal: ≤ 3 minutes of wall time on 2 idle cores, evaluations included, and FID ≤ 20 in the shipped
classifier's features (the real-versus-real floor is 1.17, ``benchmarks/results/metrics.json``).

Protocol. Each candidate is one ``saddlepoint train`` run (a subprocess, seed 0, one torch thread, so that two
candidates can share the machine) for ``--steps`` steps with the FID of 2,500 EMA samples against the 10,000
digits every ``--eval-every`` steps: one run gives the whole FID-against-steps curve. Its cost per step is the
CPU time the process used (``getrusage``: start-up, training and evaluations), which does not depend on what else
runs on the machine; a candidate is then placed on the 2-idle-core clock by one calibration, the current default
job timed on 2 idle cores (``--calibrate``). The chosen settings are finally timed as the real default job
(``saddlepoint train`` from a fresh install, 2 threads, idle machine), which is the figure the README quotes.

    python benchmarks/search_default.py                 # illustrative: every candidate, ≈ 8 CPU-minutes each
    python benchmarks/search_default.py --only base,lr5e-4
    python benchmarks/search_default.py --table         # the Markdown table from the recorded results

Finished candidates are kept in ``benchmarks/results/default-search.json`` and are not run again.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "default-search.json"

#: the default job before this search (package defaults on 2026-12-03), as --set overrides of nothing
BASE: dict[str, str] = {}
#: candidate → its --set overrides on top of the package defaults
CANDIDATES: dict[str, dict[str, str]] = {
    "base": {},
    "lr5e-4": {"optim.lr": "5e-4"},
    "lr2e-4": {"optim.lr": "2e-4"},
    "batch64": {"train.batch_size": "64"},
    "batch64-lr5e-4": {"train.batch_size": "64", "optim.lr": "5e-4"},
    "ema0.995": {"train.ema": "0.995"},
    "scale1": {"model.scale": "1.0"},
    "ttur": {"optim.lr": "[2e-4,8e-4]"},
    "hinge": {"loss.name": "hinge"},
}


def command(name: str, out: Path, steps: int, eval_every: int) -> list[str]:
    sets = {"seed": "0", "train.steps": str(steps), "train.threads": "1", "eval.every": str(eval_every),
            "eval.metrics": "[fid]", "log.progress": "none", "log.report": "false", "checkpoint.every": "0",
            **CANDIDATES[name]}
    return [sys.executable, "-m", "saddlepoint", "train", "--out", str(out),
            *(arg for key, value in sets.items() for arg in ("--set", f"{key}={value}"))]


def run_one(name: str, work: Path, steps: int, eval_every: int) -> dict[str, Any]:
    out = work / name
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    with open(out.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(command(name, out, steps, eval_every), env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time, whatever else runs beside it
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{name}: exit {os.waitstatus_to_exitcode(status)}; see {out.with_suffix('.log')}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = sorted({r["step"]: r["fid"] for r in rows if "fid" in r}.items())
    return {"name": name, "sets": CANDIDATES[name], "steps": steps, "eval_every": eval_every,
            "wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "fid": [{"step": s, "fid": f} for s, f in curve]}


def table(result: dict[str, Any]) -> str:
    runs = result["runs"]
    steps = sorted({p["step"] for r in runs.values() for p in r["fid"]})
    lines = ["| candidate | settings | CPU s / 1,000 steps | " + " | ".join(f"FID @ {s:,}" for s in steps) + " |",
             "|---|---|---:|" + "---:|" * len(steps)]
    for name, r in runs.items():
        at = {p["step"]: p["fid"] for p in r["fid"]}
        settings = ", ".join(f"{k}={v}" for k, v in r["sets"].items()) or "(the old default)"
        lines.append(f"| {name} | {settings} | {1000 * r['cpu_seconds'] / r['steps']:.0f} | "
                     + " | ".join(f"{at[s]:.1f}" if s in at else "" for s in steps) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated candidates (default: all)")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "default-search")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    if args.table:
        print(table(result))
        return
    names = [n for n in (args.only.split(",") if args.only else CANDIDATES) if n not in result["runs"]]
    args.work.mkdir(parents=True, exist_ok=True)
    with cf.ThreadPoolExecutor(args.workers) as pool:
        futures = {pool.submit(run_one, n, args.work, args.steps, args.eval_every): n for n in names}
        for future in cf.as_completed(futures):
            r = future.result()
            result["runs"][r["name"]] = r
            result.update({"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
                           "note": "1 torch thread per run, 2 runs at a time; cpu_seconds from getrusage"})
            RESULTS.write_text(json.dumps(result, indent=1))
            print(f"{r['name']}: {r['cpu_seconds']:.0f} CPU s; FID " +
                  ", ".join(f"{p['step']}: {p['fid']:.1f}" for p in r["fid"]), flush=True)
    print(table(result))


if __name__ == "__main__":
    main()
