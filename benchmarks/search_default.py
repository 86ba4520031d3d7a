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
    python benchmarks/search_default.py --verify        # illustrative: the shipped default job, timed (≈ 3 min, idle)
    python benchmarks/search_default.py --table         # results/default-search.md from the recorded results

Finished candidates are kept in ``benchmarks/results/default-search.json`` and are not run again.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "default-search.json"

#: candidate → its --set overrides on top of the package defaults
CANDIDATES: dict[str, dict[str, str]] = {
    "base": {},
    "ema0.99": {"train.ema": "0.99"},
    "lr2e-3": {"optim.lr": "2e-3"},
    "batch64": {"train.batch_size": "64"},
    "scale1": {"model.scale": "1.0"},
    "d-lr2x": {"optim.lr": "[1e-3,2e-3]"},
    "batch64-lr2e-3": {"train.batch_size": "64", "optim.lr": "2e-3"},
    "lr5e-4": {"optim.lr": "5e-4"},
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


def verify(work: Path) -> dict[str, Any]:
    """The default job itself, as a newcomer runs it: `saddlepoint train`, no arguments, the machine's threads, an
    empty statistics cache (the real digits' features are computed once, inside the time)."""
    out = work / "default-job"
    env = {**os.environ, "SADDLEPOINT_CACHE": str(work / "verify-cache")}
    for path in (out, work / "verify-cache"):
        shutil.rmtree(path, ignore_errors=True)
    load, t0 = os.getloadavg()[0], time.perf_counter()
    subprocess.run([sys.executable, "-m", "saddlepoint", "train", "--out", str(out)], env=env, check=True,
                   capture_output=True)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"wall_seconds": wall, "load_average_before": load, "threads": os.cpu_count(),
            "fid": [{"step": r["step"], "time": r["time"], "fid": r["fid"]} for r in rows if "fid" in r]}


def markdown(result: dict[str, Any]) -> str:
    v = result.get("verified")
    lines = ["`saddlepoint train` with no arguments is what a newcomer sees first. **Goal: ≤ 3 minutes on 2 idle "
             "cores and FID ≤ 20** in the shipped classifier's features (2,500 EMA samples vs the 10,000 digits; "
             "the real-versus-real floor is 1.17).", "",
             f"Search (`python benchmarks/search_default.py`, {result.get('date', '?')}): each candidate one run of "
             "3,000 steps, seed 0, one torch thread, two candidates at a time beside other jobs, FID every 500 "
             "steps; cost = the run's own CPU time (`getrusage`), so candidates compare at equal compute whatever "
             "else ran. Package defaults: DCGAN-28 ×0.5, z 64, NS, alternating Adam 1e-3 (β 0.5/0.999), batch 32, "
             "EMA 0.999. One seed: differences of a few FID points are within seed-to-seed noise.", "",
             table(result)]
    if "stopped" in result:
        lines += ["", "Stopped early (the first search, 4,000-step plan, shared machine): " + "; ".join(
            f"{name}: " + ", ".join(f"{p['step']}: {p['fid']:.1f}" for p in pts)
            for name, pts in result["stopped"].items())]
    if v:
        curve = ", ".join(f"{p['step']:,}: {p['fid']:.1f} ({p['time']:.0f} s)" for p in v["fid"])
        lines += ["", f"**The default job as shipped** (2,500 steps, FID every 500; `saddlepoint train` from a fresh "
                  f"install, {v['threads']} threads, empty statistics cache, load average "
                  f"{v['load_average_before']:.2f} before): **{v['wall_seconds']:.0f} s** wall in all; FID at step "
                  f"(loop time): {curve}."]
    lines += ["", "**Verdict.** The time goal is met; FID ≤ 20 is not, by any candidate. At equal CPU time the old "
              "settings are on the front (larger batches, a wider model, a 2× learning rate or a faster D do not "
              "lower the FID per CPU-second; EMA 0.99 equals 0.999 here, as the EMA warm-up keeps the decay near "
              "0.99 for this long). With 2 threads the same seed gives other numbers than with 1 (float sums in "
              "another order): 47.9 at 3,000 steps against 44.4. The 3-minute budget then sets the steps: 2,500, "
              "FID 53 (above), where the previous "
              "3,500 steps gave 40.8 in 3:52. `--set train.steps=3500` restores that; `configs/mnist.yaml` trains the "
              "full-width model for longer."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated candidates (default: all)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "default-search")
    ap.add_argument("--table", action="store_true", help="only write the Markdown section from the results")
    ap.add_argument("--verify", action="store_true", help="time the default job as shipped (idle machine)")
    args = ap.parse_args()
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    if args.verify:
        result["verified"] = verify(args.work)
        RESULTS.write_text(json.dumps(result, indent=1))
    if args.table or args.verify:
        RESULTS.with_suffix(".md").write_text(markdown(result) + "\n")
        print(markdown(result))
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
    RESULTS.with_suffix(".md").write_text(markdown(result) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
