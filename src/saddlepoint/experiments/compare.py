"""Compare runs: pool seeds per configuration, tabulate mean ± standard error, plot, write report.html.

``compare(paths, out)`` accepts run directories, sweep directories (``sweep.json``) and folders holding
either. Runs whose configurations agree on everything but the seed (and settings that do not change
results, such as thread counts) form one group; the groups are labelled by the keys that vary between
them. Statistics use the completed runs of a group: mean and standard error ``s / √n`` (``s`` with
``n − 1``; blank for a single run). Groups are sorted by the primary metric: for 2-D mixtures most
modes first, then lowest KL; for images lowest FID when present; otherwise the first metric.

Outputs in ``out``: ``table.md`` and ``table.csv`` (one row per configuration), ``runs.csv`` (one row
per run), ``plots/*.png`` and ``report.html`` (self-contained, written by :mod:`.compare_report`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import atomic_write_text
from .sweep import (
    COST_COLUMNS,
    MANIFEST,
    NUISANCE_KEYS,
    RESULTS_JSONL,
    flatten,
    read_summary,
    rows_to_csv,
    value_text,
)

#: keys naming a configuration when nothing varies
FALLBACK_LABEL_KEYS = ("data.name", "loss.name", "optim.name")


@dataclass
class RunInfo:
    """One run as compare sees it."""

    name: str
    dir: Path
    config: dict[str, Any]  # flattened
    seed: Any
    status: str
    error: str | None
    metrics: dict[str, Any]
    cost: dict[str, Any]
    source: str = ""
    _records: list[dict[str, Any]] | None = None
    refined: dict[str, Any] = field(default_factory=dict)  # summary.json "refined": eval.refine's sampler rows

    @property
    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            from ..report.html import read_records

            self._records = read_records(self.dir)
        return self._records

    @property
    def sample_image(self) -> Path | None:
        final = self.dir / "samples" / "final.png"
        if final.is_file():
            return final
        steps = sorted((self.dir / "samples").glob("step_*.png")) if (self.dir / "samples").is_dir() else []
        return steps[-1] if steps else None


@dataclass
class Group:
    label: str
    values: dict[str, Any]
    runs: list[RunInfo]
    stats: dict[str, tuple[float | None, float | None, int]] = field(default_factory=dict)

    @property
    def completed(self) -> list[RunInfo]:
        return [r for r in self.runs if r.status == "completed"]

    def count(self, status: str) -> int:
        return sum(1 for r in self.runs if r.status == status)


@dataclass
class Comparison:
    out: Path
    runs: list[RunInfo]
    groups: list[Group]  # sorted by the primary metric
    metrics: list[str]
    costs: list[str]
    primary: list[tuple[str, bool]]  # (metric, higher is better)
    varying: list[str]
    markdown: str
    files: dict[str, Path]


# ---------------------------------------------------------------------------------- loading
def _read_yaml(path: Path) -> dict[str, Any]:
    from ..config import read_yaml

    try:
        return read_yaml(path)
    except UserError:
        return {}


def _results_rows(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    try:
        lines = (sweep_dir / RESULTS_JSONL).read_text(encoding="utf-8").splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "run" in row:
            rows[row["run"]] = row
    return rows


def _run_from_dir(run_dir: Path, config: dict[str, Any] | None = None, row: Mapping[str, Any] | None = None,
                  name: str | None = None, source: str = "") -> RunInfo:
    summary = read_summary(run_dir) or {}
    config = config if config is not None else _read_yaml(run_dir / "config.yaml")
    flat = flatten(config)
    status = summary.get("status") or (row or {}).get("status") or "unfinished"
    if status == "running":
        status = "unfinished"
    error = summary.get("error") or (row or {}).get("error")
    metrics = {k: v for k, v in (summary.get("metrics") or {}).items()}
    cost = {key: summary.get(key, (row or {}).get(key)) for key in COST_COLUMNS}
    return RunInfo(name or run_dir.name, run_dir, flat, flat.get("seed"), status, error, metrics, cost, source,
                   refined=summary.get("refined") or {})


def with_refined(runs: list[RunInfo]) -> list[RunInfo]:
    """Each run with discriminator-driven samplers (``eval.refine``) becomes one row per sampler beside G: the
    key ``sampler`` ("G", "G + DRS", ...) is added to every run's config, so that groups differ by it."""
    if not any(run.refined for run in runs):
        return runs
    out = []
    for run in runs:
        run.config["sampler"] = "G"
        out.append(run)
        for row in run.refined.values():
            config = {**run.config, "sampler": row.get("label")}
            out.append(dataclasses.replace(run, config=config, metrics=dict(row.get("metrics") or {}), refined={}))
    return out


def _load_sweep(path: Path) -> list[RunInfo]:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        entries = manifest["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{path / MANIFEST}: not a readable sweep manifest") from None
    rows = _results_rows(path)
    runs = []
    for entry in entries:
        run_dir = path / entry["dir"]
        runs.append(_run_from_dir(run_dir, entry.get("config"), rows.get(entry["name"]), entry["name"], str(path)))
    return runs


def _is_run(path: Path) -> bool:
    """A training run directory: ``train`` writes config.yaml before the first step."""
    return (path / "config.yaml").is_file()


def load_runs(paths: Sequence[str | Path]) -> list[RunInfo]:
    """Runs from run directories, sweep directories and folders of either (duplicates dropped)."""
    if not paths:
        raise UserError("compare: give at least one run or sweep directory")
    runs: list[RunInfo] = []
    seen: set[Path] = set()

    def add(items: list[RunInfo]) -> None:
        for run in items:
            key = run.dir.resolve()
            if key not in seen:
                seen.add(key)
                runs.append(run)

    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise UserError(f"{path}: does not exist or is not a directory")
        if (path / MANIFEST).is_file():
            add(_load_sweep(path))
        elif _is_run(path):
            add([_run_from_dir(path)])
        else:
            children = sorted(p for p in path.iterdir() if p.is_dir())
            found = False
            for child in children:
                if (child / MANIFEST).is_file():
                    add(_load_sweep(child))
                    found = True
                elif _is_run(child):
                    add([_run_from_dir(child, name=f"{path.name}/{child.name}")])
                    found = True
            if not found:
                raise UserError(f"{path}: neither a run directory (config.yaml) nor a sweep directory (sweep.json), "
                                f"and holds none")
    if not runs:
        raise UserError("compare: no runs found in " + ", ".join(str(p) for p in paths))
    return with_refined(runs)


# ---------------------------------------------------------------------------------- grouping and statistics
def canon(value: Any) -> str:
    """A value as canonical JSON text (to compare configuration values)."""
    return json.dumps(value, sort_keys=True, default=str)


def identity(run: RunInfo, keys: set[str] | None = None) -> dict[str, Any]:
    """The run's flattened configuration without the keys that do not change results (and only ``keys``)."""
    return {k: v for k, v in run.config.items() if k not in NUISANCE_KEYS and (keys is None or k in keys)}


def shared_keys(runs: Sequence[RunInfo]) -> set[str]:
    """Config keys that every run's config has: keys added to the schema later do not split groups."""
    configs = [set(r.config) for r in runs if r.config]
    return set.intersection(*configs) if configs else set()


def group_runs(runs: Sequence[RunInfo], preferred_keys: Sequence[str] = ()) -> tuple[list[Group], list[str]]:
    """Group runs whose configurations agree except for the seed; label groups by the varying keys."""
    common_keys = shared_keys(runs)
    identities = [identity(r, common_keys) for r in runs]
    keys = sorted(common_keys)
    distinct = {k: len({canon(ident.get(k, "—")) for ident in identities}) for k in keys}
    varying = [k for k in keys if distinct[k] > 1]
    # grid keys in grid order first, then the keys that tell most groups apart
    varying.sort(key=lambda k: (preferred_keys.index(k) if k in preferred_keys else len(preferred_keys),
                                -distinct[k], k))
    groups: dict[str, Group] = {}
    for run, ident in zip(runs, identities):
        gid = canon(ident)
        if gid not in groups:
            shown = varying or [k for k in FALLBACK_LABEL_KEYS if k in ident]
            values = {k: ident.get(k) for k in shown}
            label = ", ".join(f"{k}={value_text(v)}" for k, v in values.items()) or run.name
            groups[gid] = Group(label, values, [])
        groups[gid].runs.append(run)
    return list(groups.values()), varying


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def mean_se(values: Sequence[float]) -> tuple[float | None, float | None, int]:
    """Mean and standard error (sample standard deviation / √n; None for n < 2)."""
    n = len(values)
    if n == 0:
        return None, None, 0
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None, 1
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n), n


def metric_columns(runs: Sequence[RunInfo]) -> list[str]:
    """The numeric metric keys of ``runs`` in the order the metric registry gives (others alphabetically)."""
    from ..metrics import metric_columns as ordered  # torch-free at import: sweep workers import this module

    names: set[str] = set()
    for run in runs:
        names.update(k for k, v in run.metrics.items() if _number(v) is not None)
    return ordered(names)


def primary_metrics(metrics: Sequence[str]) -> list[tuple[str, bool]]:
    """The sort keys, (metric, higher is better), from the metric registry's facts: e.g. modes covered
    then KL for 2-D mixtures, FID for images; a key no metric declares ranks lowest first."""
    from ..metrics import table_ranking

    return table_ranking(list(metrics))


def summarize(groups: Sequence[Group], metrics: Sequence[str], costs: Sequence[str]) -> None:
    for group in groups:
        done = group.completed
        for m in metrics:
            group.stats[m] = mean_se([v for v in (_number(r.metrics.get(m)) for r in done) if v is not None])
        for c in costs:
            group.stats[c] = mean_se([v for v in (_number(r.cost.get(c)) for r in done) if v is not None])


def sort_groups(groups: list[Group], primary: Sequence[tuple[str, bool]]) -> list[Group]:
    def key(group: Group) -> tuple:
        parts: list[Any] = []
        for metric, higher in primary:
            mean = group.stats.get(metric, (None, None, 0))[0]
            parts.extend([mean is None, 0.0 if mean is None else (-mean if higher else mean)])
        return (*parts, -len(group.completed))

    return sorted(groups, key=key)


# ---------------------------------------------------------------------------------- tables
def fmt_stat(stat: tuple[float | None, float | None, int]) -> str:
    mean, se, n = stat
    if mean is None:
        return "—"
    if se is None:
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {se:.2g}"


def _notes(group: Group) -> str:
    parts = []
    for status in ("diverged", "failed", "interrupted", "unfinished", "pending"):
        count = group.count(status)
        if count:
            parts.append(f"{count} {status}")
    return ", ".join(parts)


def short_label(label: str, width: int = 100) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def table_rows(comparison_groups: Sequence[Group], metrics: Sequence[str], costs: Sequence[str]) -> tuple[
        list[str], list[list[str]]]:
    headers = ["#", "configuration", "runs", *metrics, *costs, "notes"]
    rows = []
    for rank, group in enumerate(comparison_groups, 1):
        rows.append([str(rank), short_label(group.label), f"{len(group.completed)}/{len(group.runs)}",
                     *(fmt_stat(group.stats[m]) for m in metrics), *(fmt_stat(group.stats[c]) for c in costs),
                     _notes(group)])
    return headers, rows


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---:" if h not in ("configuration", "notes") else "---" for h in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_rows(groups: Sequence[Group], varying: Sequence[str], metrics: Sequence[str],
             costs: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for rank, group in enumerate(groups, 1):
        row: dict[str, Any] = {"rank": rank, "configuration": group.label}
        for key in varying:
            row[key] = group.values.get(key)
        row.update({"runs": len(group.runs), "completed": len(group.completed), "diverged": group.count("diverged"),
                    "failed": group.count("failed")})
        for name in (*metrics, *costs):
            mean, se, n = group.stats[name]
            row[f"{name}_mean"] = mean
            row[f"{name}_se"] = se
            row[f"{name}_n"] = n
        rows.append(row)
    return rows


def run_rows(groups: Sequence[Group], metrics: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for group in groups:
        for run in group.runs:
            row = {"configuration": group.label, "run": run.name, "seed": run.seed, "status": run.status,
                   "error": run.error}
            row.update({m: run.metrics.get(m) for m in metrics})
            row.update(run.cost)
            row["dir"] = str(run.dir)
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- the comparison
def compare(paths: Sequence[str | Path], out: str | Path, title: str | None = None, plots: bool = True) -> Comparison:
    """Load, group, tabulate and plot runs; write the tables, plots and ``report.html`` into ``out``."""
    runs = load_runs(paths)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    preferred: list[str] = []
    for raw in paths:
        try:
            grid = json.loads((Path(raw) / MANIFEST).read_text(encoding="utf-8")).get("grid") or {}
        except (OSError, ValueError):
            continue
        preferred.extend(k for k in grid if k not in preferred)
    groups, varying = group_runs(runs, preferred)
    metrics = metric_columns(runs)
    costs = [c for c in COST_COLUMNS if c != "hvps" or any(_number(r.cost.get("hvps")) for r in runs)]
    summarize(groups, metrics, costs)
    primary = primary_metrics(metrics)
    groups = sort_groups(groups, primary)
    headers, rows = table_rows(groups, metrics, costs)
    markdown = markdown_table(headers, rows)
    files = {"table.md": out / "table.md", "table.csv": out / "table.csv", "runs.csv": out / "runs.csv"}
    atomic_write_text(files["table.md"], markdown)
    atomic_write_text(files["table.csv"], rows_to_csv(csv_rows(groups, varying, metrics, costs)))
    atomic_write_text(files["runs.csv"], rows_to_csv(run_rows(groups, metrics)))
    comparison = Comparison(out, runs, groups, metrics, costs, primary, varying, markdown, files)
    from .compare_report import make_plots, write_compare_report
    figures = make_plots(comparison) if plots else []
    files["report.html"] = write_compare_report(comparison, figures, [str(p) for p in paths], title)
    return comparison
