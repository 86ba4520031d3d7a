"""A sweep's files: ``results.jsonl``/``results.csv`` rows (grid values, seed, status, error, final metrics,
cost) and the ``sweep.json`` manifest, written atomically."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io import atomic_write_text

MANIFEST = "sweep.json"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
RUNS = "runs"
FORMAT = "saddlepoint-sweep"
#: leading columns of results rows (metrics follow, then the cost columns)
COST_COLUMNS = ("steps", "grad_evals", "hvps", "wall_time")


@dataclass
class RunSpec:
    index: int
    name: str
    values: dict[str, Any]  # grid key → resolved value
    seed: int
    config: dict[str, Any]  # fully resolved (to_dict)

    @property
    def rel_dir(self) -> str:
        return f"{RUNS}/{self.name}"


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def make_row(spec: RunSpec, status: str, error: str | None = None, summary: dict[str, Any] | None = None,
             wall_time: float | None = None) -> dict[str, Any]:
    summary = summary or {}
    row: dict[str, Any] = {"run": spec.name}
    row.update(spec.values)
    row["seed"] = spec.seed
    row["status"] = status
    row["error"] = error if error is not None else summary.get("error")
    metrics = summary.get("metrics") or {}
    for key, value in metrics.items():
        if key not in row and key not in COST_COLUMNS and key != "dir":
            row[key] = value
    for key in COST_COLUMNS:
        row[key] = summary.get(key)
    if row["wall_time"] is None and wall_time is not None:
        row["wall_time"] = round(wall_time, 3)
    row["dir"] = spec.rel_dir
    return row


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


def rows_to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def result_columns(rows: Sequence[Mapping[str, Any]], grid_keys: Sequence[str]) -> list[str]:
    head = ["run", *grid_keys, "seed", "status", "error"]
    tail = [*COST_COLUMNS, "dir"]
    metrics: list[str] = []
    for row in rows:
        metrics.extend(k for k in row if k not in head and k not in tail and k not in metrics)
    return [*head, *metrics, *tail]


def write_results(out: Path, rows: Sequence[dict[str, Any]], grid_keys: Sequence[str]) -> None:
    columns = result_columns(rows, grid_keys)
    lines = [json.dumps({c: row.get(c) for c in columns if c in row}, default=str) for row in rows]
    atomic_write_text(out / RESULTS_JSONL, "".join(line + "\n" for line in lines))
    atomic_write_text(out / RESULTS_CSV, rows_to_csv(rows, columns))


def write_manifest(out: Path, settings: dict[str, Any], base: dict[str, Any], grid: Mapping[str, Sequence[Any]],
                   specs: Sequence[RunSpec], rows: Sequence[Mapping[str, Any]], workers: int, threads: int,
                   created: str | None) -> None:
    from .. import __version__

    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    manifest = {
        "format": FORMAT,
        "version": 1,
        "saddlepoint": __version__,
        "created": created or now,
        "updated": now,
        "settings": settings,
        "base_config": base,
        "grid": {key: list(values) for key, values in grid.items()},
        "seeds": sorted({spec.seed for spec in specs}),
        "workers": workers,
        "threads_per_worker": threads,
        "runs": [
            {"name": spec.name, "dir": spec.rel_dir, "values": spec.values, "seed": spec.seed,
             "status": row["status"], "config": spec.config}
            for spec, row in zip(specs, rows)
        ],
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
