"""``saddlepoint sweep`` and ``saddlepoint compare`` (registered by :mod:`saddlepoint.cli`).

Light at import time (no torch): the main CLI imports this module for its parsers.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_sweep_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sweep", help="run a grid of configurations × seeds in parallel worker processes",
        description="Run the cartesian product of the --grid values × seeds; each run gets its own directory "
                    "under DIR/runs/. Re-running the same command skips finished runs.")
    p.add_argument("--config", help="YAML file (see configs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override for every run")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a dotted key and its values (repeatable; lists in brackets: optim.lr=[1e-4,4e-4],1e-3)")
    p.add_argument("--seeds", default="1", metavar="N", help="seeds per grid point: seed, seed+1, ... (default 1)")
    p.add_argument("--workers", default="1", metavar="K",
                   help="worker processes (default 1); each uses cores // K threads")
    p.add_argument("--out", required=True, help="sweep directory")
    return p


def add_compare_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare", help="tables, plots and report.html across runs and sweeps",
        description="Group runs by configuration (seeds pooled) and write table.md, table.csv, runs.csv, plots/ "
                    "and a self-contained report.html.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run directories, sweep directories or folders of them")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--title", help="report title")
    return p


def _positive_int(text: str, flag: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1:
        from ..errors import UserError

        raise UserError(f"{flag} {text}: expected a positive integer")
    return value


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..config import nest, parse_sets, read_yaml
    from ..errors import UserError
    from .sweep import parse_grid, sweep

    if not args.grid:
        raise UserError("sweep: give at least one --grid KEY=V1,V2")
    seeds = _positive_int(args.seeds, "--seeds")
    workers = _positive_int(args.workers, "--workers")
    layers = [read_yaml(args.config)] if args.config else []
    layers.append(nest(parse_sets(args.set)))
    grid = parse_grid(args.grid)
    settings = {"command": ["saddlepoint", "sweep", *sys.argv[2:]] if sys.argv[1:2] == ["sweep"] else None,
                "config": args.config, "set": list(args.set), "grid": grid, "seeds": seeds, "workers": workers}
    result = sweep(layers, grid, seeds=seeds, workers=workers, out=args.out, settings=settings)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts.items()))
    print(f"runs: {len(result.rows)} ({counts}); executed now: {result.executed}, skipped: {result.skipped}")
    print(f"results: {result.out / 'results.csv'}")
    print(f"compare: saddlepoint compare {result.out} --out {result.out / 'compare'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare

    comparison = compare(args.dirs, args.out, title=args.title)
    print(comparison.markdown, end="")
    print(f"tables: {comparison.files['table.md']}, {comparison.files['table.csv']}")
    print(f"report: {comparison.files['report.html']}")
    return 0
