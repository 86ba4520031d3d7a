"""Experiments a person reads: grid sweeps over seeds and cross-run comparison.

``sweep(config, grid, seeds=N, workers=K, out=DIR)`` runs the cartesian grid × seeds in K worker
processes (one run directory each, finished runs skipped on a re-run) and writes ``sweep.json``,
``results.csv`` and ``results.jsonl``; ``compare([DIR, ...], out=DIR)`` pools seeds per configuration
and writes Markdown/CSV tables, plots and a self-contained ``report.html``.
"""

from __future__ import annotations

from ..system import available_cores
from .compare import Comparison, compare, load_runs
from .grid import expand_grid, parse_grid
from .sweep import SweepResult, sweep

__all__ = ["Comparison", "SweepResult", "available_cores", "compare", "expand_grid", "load_runs", "parse_grid",
           "sweep"]
