"""Compare runs: pool seeds per configuration, tabulate mean ± standard error, plot, write report.html.

``compare(paths, out)`` accepts run directories, sweep directories (``sweep.json``) and folders holding
either. Runs whose configurations agree on everything but the seed (and settings that do not change
results, such as thread counts) form one group; the groups are labelled by the keys that vary between
them. Statistics use the completed runs of a group: mean and standard error ``s / √n`` (``s`` with
``n − 1``; blank for a single run). Groups are sorted by the primary metric: for 2-D mixtures most
modes first, then lowest KL; for images lowest FID when present; otherwise the first metric.

Outputs in ``out``: ``table.md`` and ``table.csv`` (one row per configuration), ``runs.csv`` (one row
per run), ``plots/*.png`` and ``report.html`` (self-contained).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from .sweep import (
    COST_COLUMNS,
    MANIFEST,
    NUISANCE_KEYS,
    RESULTS_JSONL,
    _atomic_write,
    flatten,
    read_summary,
    rows_to_csv,
    value_text,
)

#: metrics where larger is better (everything else: smaller is better)
HIGHER_IS_BETTER = {"modes", "hq", "is", "is_mean", "precision", "recall", "density", "coverage", "stacked_modes",
                    "stacked-modes", "accuracy"}
#: preferred column order of metrics (others follow alphabetically)
METRIC_ORDER = ["modes", "hq", "kl", "fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "density",
                "coverage"]
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
    return RunInfo(name or run_dir.name, run_dir, flat, flat.get("seed"), status, error, metrics, cost, source)


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
    return runs


# ---------------------------------------------------------------------------------- grouping and statistics
def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _identity(run: RunInfo, keys: set[str] | None = None) -> dict[str, Any]:
    return {k: v for k, v in run.config.items() if k not in NUISANCE_KEYS and (keys is None or k in keys)}


def shared_keys(runs: Sequence[RunInfo]) -> set[str]:
    """Config keys that every run's config has: keys added to the schema later do not split groups."""
    configs = [set(r.config) for r in runs if r.config]
    return set.intersection(*configs) if configs else set()


def group_runs(runs: Sequence[RunInfo], preferred_keys: Sequence[str] = ()) -> tuple[list[Group], list[str]]:
    """Group runs whose configurations agree except for the seed; label groups by the varying keys."""
    common_keys = shared_keys(runs)
    identities = [_identity(r, common_keys) for r in runs]
    keys = sorted(common_keys)
    distinct = {k: len({_canon(ident.get(k, "—")) for ident in identities}) for k in keys}
    varying = [k for k in keys if distinct[k] > 1]
    # grid keys in grid order first, then the keys that tell most groups apart
    varying.sort(key=lambda k: (preferred_keys.index(k) if k in preferred_keys else len(preferred_keys),
                                -distinct[k], k))
    groups: dict[str, Group] = {}
    for run, ident in zip(runs, identities):
        gid = _canon(ident)
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
    names: set[str] = set()
    for run in runs:
        names.update(k for k, v in run.metrics.items() if _number(v) is not None)
    return [m for m in METRIC_ORDER if m in names] + sorted(names - set(METRIC_ORDER))


def primary_metrics(metrics: Sequence[str]) -> list[tuple[str, bool]]:
    """The sort keys: (metric, higher is better)."""
    if "modes" in metrics:
        return [("modes", True)] + ([("kl", False)] if "kl" in metrics else [])
    if "fid" in metrics:
        return [("fid", False)]
    if metrics:
        return [(metrics[0], metrics[0] in HIGHER_IS_BETTER)]
    return []


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
    _atomic_write(files["table.md"], markdown)
    _atomic_write(files["table.csv"], rows_to_csv(csv_rows(groups, varying, metrics, costs)))
    _atomic_write(files["runs.csv"], rows_to_csv(run_rows(groups, metrics)))
    comparison = Comparison(out, runs, groups, metrics, costs, primary, varying, markdown, files)
    figures = make_plots(comparison) if plots else []
    files["report.html"] = write_compare_report(comparison, figures, [str(p) for p in paths], title)
    return comparison


def make_plots(comparison: Comparison, max_groups: int = 10, max_seeds: int = 3) -> list[tuple[str, Path]]:
    """Write ``plots/*.png``; returns ``[(caption, path), ...]`` in report order."""
    from ..report import plots as P

    plot_dir = comparison.out / "plots"
    shown = comparison.groups[:max_groups]
    more = ""
    if len(comparison.groups) > max_groups:
        more = f" (the best {max_groups} of {len(comparison.groups)} configurations)"
    labels = {id(g): f"#{i} {g.label}" for i, g in enumerate(comparison.groups, 1)}
    figures: list[tuple[str, Path]] = []
    seeds_shown = max(1, min(max_seeds, max(len(g.completed) for g in shown) if shown else 1))

    def panel(group: Group, k: int) -> tuple[str, Path | None]:
        runs = group.completed or group.runs
        if k >= len(runs):
            return (f"{labels[id(group)]}", None)
        run = runs[k]
        state = "" if run.status == "completed" else f" ({run.status})"
        return (f"{labels[id(group)]} · seed {run.seed}{state}", run.sample_image)

    if len(shown) <= 6:  # configurations side by side, one row per seed
        panels = [panel(g, k) for k in range(seeds_shown) for g in shown]
        ncols = len(shown)
    else:  # one row per configuration, seeds side by side
        panels = [panel(g, k) for g in shown for k in range(seeds_shown)]
        ncols = seeds_shown
    if shown:
        kinds = {str(r.config.get("data.name")) for g in shown for r in g.runs}
        points = any(r.metrics.get("modes") is not None for g in shown for r in g.runs) or kinds <= {"ring", "grid"}
        what = "2-D final samples with the mode centres (×)" if points else "final image samples"
        figures.append((f"{what}, each configuration side by side{more}",
                        P.plot_sample_panels(panels, plot_dir / "samples.png", ncols=ncols)))
    curve_groups = {labels[id(g)]: [r.records for r in g.runs if r.records] for g in shown}
    curve_groups = {k: v for k, v in curve_groups.items() if v}
    if curve_groups:
        logged = [m for m in comparison.metrics[:6]
                  if any(m in rec for runs in curve_groups.values() for recs in runs for rec in recs)]
        if logged:
            path = P.plot_metric_curves(curve_groups, logged, plot_dir / "metrics.png")
            figures.append((f"{', '.join(logged)} against step and wall-clock time; band: ± standard error over "
                            f"seeds{more}", path))
        if any("loss_g" in rec for runs in curve_groups.values() for recs in runs for rec in recs):
            figures.append((f"per-player losses and gradient norms; band: ± standard error over seeds{more}",
                            P.plot_player_curves(curve_groups, plot_dir / "players.png")))
    return figures


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# ---------------------------------------------------------------------------------- report.html
def write_compare_report(comparison: Comparison, figures: Sequence[tuple[str, Path]], inputs: Sequence[str],
                         title: str | None = None) -> Path:
    """``out/report.html``: the table, failures, plots, per-run results and the configurations."""
    import yaml

    from ..report import html as H

    c = comparison
    parts: list[str] = []
    order = ", then ".join(f"{m} ({'highest' if hi else 'lowest'} first)" for m, hi in c.primary) or "input order"
    parts.append(f"<p>{len(c.runs)} runs in {len(c.groups)} configurations from {H.esc(', '.join(inputs))}. "
                 f"Values are mean ± standard error over the completed seeds of each configuration; "
                 f"sorted by {H.esc(order)}.</p>")
    headers, rows = table_rows(c.groups, c.metrics, c.costs)
    parts.append("<h2>Results</h2>")
    parts.append(H.table(headers, rows, numeric=[h not in ("configuration", "notes") for h in headers],
                         row_classes=["bad" if not g.completed else "" for g in c.groups]))
    bad = [r for g in c.groups for r in g.runs if r.status != "completed"]
    if bad:
        parts.append("<h2>Runs that did not complete</h2>")
        parts.append(H.table(["run", "status", "error"], [[r.name, r.status, r.error or ""] for r in bad],
                             numeric=[False, False, False]))
    if figures:
        parts.append("<h2>Plots</h2>")
        parts.extend(H.figure(path, caption) for caption, path in figures)
    parts.append("<h2>Runs</h2>")
    per_run = run_rows(c.groups, c.metrics)
    run_headers = ["configuration", "run", "seed", "status", *c.metrics, *c.costs]
    parts.append(H.table(run_headers, [[row.get(h) for h in run_headers] for row in per_run],
                         row_classes=["" if row["status"] == "completed" else "bad" for row in per_run]))
    parts.append("<h2>Configurations</h2>")
    identities = [_identity(r, shared_keys(c.runs)) for r in c.runs]
    common = {k: v for k, v in identities[0].items()
              if all(_canon(ident.get(k, "—")) == _canon(v) for ident in identities[1:])} if identities else {}
    from ..config import nest

    parts.append("<h3>Shared by all runs</h3>")
    parts.append(H.pre(yaml.safe_dump(nest(common), sort_keys=False) if common else "(nothing)"))
    if c.varying:
        parts.append("<h3>Per configuration</h3>")
        parts.append(H.table(["#", *c.varying], [[i, *(value_text(g.values.get(k)) for k in c.varying)]
                                                 for i, g in enumerate(c.groups, 1)],
                             numeric=[True] + [False] * len(c.varying)))
    for i, group in enumerate(c.groups, 1):
        config = nest(_identity(group.runs[0]))
        parts.append(H.details(f"#{i} {group.label}: full configuration",
                               H.pre(yaml.safe_dump(config, sort_keys=False))))
    return H.write_page(c.out / "report.html", title or "saddlepoint comparison", parts)
