"""The benchmark suite: every part in one command, one after another (never two timed parts at once).

    python benchmarks/run.py                 # the full suite (hours); results/<part>.json, then docs/benchmarks.md
    python benchmarks/run.py --quick         # a minutes-long subset; results/<part>-quick.json, sanity-checked
    python benchmarks/run.py --parts trainer,optim --quick

Parts (each a script in this folder that also runs on its own):

=========  ======================  ==================================================================
trainer    bench_trainer.py        a saddlepoint step ÷ a bare PyTorch loop (goal ≤ 1.03)
optim      bench_optim.py          every optimizer ÷ simultaneous Adam, product costs, fd accuracy,
                                   ACGD ÷ the CGDs package (full suite only, if installed)
metrics    bench_metrics.py        FID eigen form vs scipy sqrtm, MNIST real-vs-real floor, eval cost
distributed bench_distributed.py   2 processes × 1 thread ÷ 1 process × 2 threads
quality2d  bench_quality2d.py      ring and grid: every optimizer and loss, 5 seeds, equal gradient budget
study2d    study2d.py              protocol v2: lr grids on held-out seeds, equal steps and compute, 2 networks
mnist      bench_mnist.py          Stacked-MNIST modes/KL; MNIST FID/KID per loss; optimizer convergence
=========  ======================  ==================================================================

After the parts ran, every result file is checked for sanity (all numbers finite where they must be,
ratios positive, metrics in their ranges); ``--quick`` exits 1 if a check fails, so CI can run it. The
full suite then regenerates ``docs/benchmarks.md`` (``benchmarks/report.py``); ``--quick`` never
touches the committed results or the document.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@dataclass
class Part:
    script: str
    full_args: list[str]
    quick_args: list[str]
    check: Callable[[dict[str, Any]], list[str]]
    #: keys whose values may legitimately be NaN/inf (e.g. a method that diverged in a study)
    may_be_nonfinite: tuple[str, ...] = field(default_factory=tuple)
    #: the script's ``--out`` names the results folder (it picks ``<part>.json`` / ``<part>-quick.json``)
    out_is_folder: bool = False


def numbers(obj: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a JSON tree, with its dotted path."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield path, float(obj)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from numbers(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from numbers(value, f"{path}[{i}]")


def in_range(problems: list[str], name: str, value: Any, lo: float, hi: float) -> None:
    if not isinstance(value, (int, float)) or not lo <= value <= hi:
        problems.append(f"{name} = {value!r} not in [{lo}, {hi}]")


def check_trainer(r: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    in_range(problems, "ratio_median", r.get("ratio_median"), 0.3, 3.0)
    for side, value in r.get("seconds_per_step", {}).items():
        in_range(problems, f"seconds_per_step.{side}", value, 1e-4, 60.0)
    return problems


def check_optim(r: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for problem, part in r.get("steps", {}).items():
        for name, variant in part.get("variants", {}).items():
            in_range(problems, f"steps.{problem}.{name}.ratio_to_adam", variant.get("ratio_to_adam"), 0.2, 500.0)
    for problem, part in r.get("products", {}).items():
        for name, ratio in part.get("ratio_to_gradient", {}).items():
            in_range(problems, f"products.{problem}.{name}", ratio, 0.01, 50.0)
    dyx = r.get("dyx", {})
    for name, ratio in dyx.get("ratio_to_gradient", {}).items():
        in_range(problems, f"dyx.{name}", ratio, 0.01, 50.0)
    for name, diff in dyx.get("relative_difference_to_current", {}).items():
        in_range(problems, f"dyx.{name} (agreement with the default product)", diff, 0.0, 1e-4)
    if not r.get("steps"):
        problems.append("no step-time results")
    return problems


def check_metrics(r: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    fid = r.get("fid_benchmark", {})
    in_range(problems, "fid_benchmark.relative_difference", fid.get("relative_difference"), 0.0, 1e-6)
    in_range(problems, "fid_benchmark.ratio_matrix_part", fid.get("ratio_matrix_part"), 0.0, 5.0)
    floor = r.get("mnist_floor", {})
    in_range(problems, "mnist_floor.fid_random_halves_5000_vs_5000", floor.get("fid_random_halves_5000_vs_5000"),
             0.0, 20.0)
    return problems


def check_distributed(r: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, entry in r.items():
        in_range(problems, f"{name}.ratio_two_over_one", entry.get("ratio_two_over_one"), 0.1, 20.0)
    return problems


def check_quality2d(r: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for path, value in numbers(r):
        leaf = path.rsplit(".", 1)[-1].split("[")[0]
        if not math.isfinite(value):
            continue  # a diverged run is a result; finiteness of the rest is checked below
        if leaf in ("hq", "hq_mean"):
            in_range(problems, path, value, 0.0, 1.0)
        elif leaf in ("modes", "modes_mean"):
            in_range(problems, path, value, 0.0, 25.0)
        elif leaf in ("kl", "kl_mean"):
            in_range(problems, path, value, 0.0, 10.0)
    return problems


def check_study2d(r: dict[str, Any]) -> list[str]:
    if "pieces" in r:  # the full report: every row's metrics in range
        return check_quality2d(r)
    return [*r.get("problems", []), *([] if r.get("sane") else ["study2d quick check not sane"])]


def check_mnist(r: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for path, value in numbers(r):
        leaf = path.rsplit(".", 1)[-1].split("[")[0]
        if leaf in ("fid", "fid_mean"):  # a collapsed generator scores ~1,000, uniform noise ~3,800
            in_range(problems, path, value, 0.0, 5000.0)
        elif leaf in ("modes", "stacked_modes"):
            in_range(problems, path, value, 0.0, 1000.0)
    return problems


PARTS: dict[str, Part] = {
    "trainer": Part("bench_trainer.py", [], ["--quick"], check_trainer),
    "optim": Part("bench_optim.py", ["--cgds"], ["--quick"], check_optim),
    "metrics": Part("bench_metrics.py", [], ["--quick"], check_metrics),
    "distributed": Part("bench_distributed.py", [], ["--quick"], check_distributed),
    "quality2d": Part("bench_quality2d.py", [], ["--quick"], check_quality2d, may_be_nonfinite=("kl",),
                      out_is_folder=True),
    "mnist": Part("bench_mnist.py", [], ["--quick"], check_mnist),
    "study2d": Part("study2d.py", ["--datasets", "ring,grid", "--archs", "preset,pacgan"], ["--quick"],
                    check_study2d, out_is_folder=True),
}


def result_path(name: str, quick: bool) -> Path:
    return RESULTS / (f"{name}-quick.json" if quick else f"{name}.json")


def sanity(name: str, part: Part, path: Path) -> list[str]:
    if not path.exists():
        return [f"{path} was not written"]
    result = json.loads(path.read_text())
    problems = part.check(result)
    for where, value in numbers(result):
        if not math.isfinite(value) and not any(key in where for key in part.may_be_nonfinite):
            problems.append(f"{where} = {value} is not finite")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the minutes-long subset (results/<part>-quick.json)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    ap.add_argument("--check-only", action="store_true", help="only check the existing result files")
    ap.add_argument("--no-report", action="store_true", help="do not regenerate docs/benchmarks.md")
    args = ap.parse_args()
    names = [n.strip() for n in args.parts.split(",") if n.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        print(f"error: --parts: unknown part(s) {', '.join(unknown)}; valid: {', '.join(PARTS)}", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"),
                                                                      os.environ.get("PYTHONPATH")]))}
    failed: list[str] = []
    timings: dict[str, float] = {}
    for name in names:
        part = PARTS[name]
        out = result_path(name, args.quick)
        if not args.check_only:
            cmd = [sys.executable, str(HERE / part.script), *(part.quick_args if args.quick else part.full_args),
                   "--out", str(out.parent if part.out_is_folder else out)]
            print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
            start = time.perf_counter()
            rc = subprocess.call(cmd, env=env)
            timings[name] = time.perf_counter() - start
            print(f"== {name}: exit {rc} after {timings[name]:.0f} s", flush=True)
            if rc != 0:
                failed.append(f"{name}: exit code {rc}")
                continue
        problems = sanity(name, part, out)
        failed += [f"{name}: {p}" for p in problems]
        print(f"== {name}: {'sane' if not problems else f'{len(problems)} problem(s)'} ({out.name})", flush=True)
    if timings:
        print("times: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
              + f"; total {sum(timings.values()):.0f} s")
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    if not args.quick and not args.no_report and not failed:
        subprocess.check_call([sys.executable, str(HERE / "report.py")], env=env)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
