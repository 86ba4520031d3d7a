"""Self-contained HTML reports: one ``report.html`` with tables, plots and configurations.

Images are embedded as base64 ``data:`` URIs and the style sheet is inline, so the file opens anywhere,
offline, and can be mailed or archived alone. :func:`write_run_report` writes the report of a single run
directory; :mod:`saddlepoint.experiments.compare` builds the cross-run report from the same pieces.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1180px;
       color: #222; background: #fff; line-height: 1.4; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.6em;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 1.05em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.bad td { background: #fff3f3; }
figure { margin: 12px 0 20px; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.88em; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 8px; overflow-x: auto; font-size: 0.85em; }
details { margin: 6px 0; } summary { cursor: pointer; }
.status-completed { color: #1a7f37; } .status-diverged, .status-failed { color: #c62828; }
""".strip()


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def data_uri(source: str | Path | bytes, mime: str | None = None) -> str:
    """``data:<mime>;base64,...`` for a file path or raw bytes (PNG unless the suffix says otherwise)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        data = path.read_bytes()
        mime = mime or {".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                        ".svg": "image/svg+xml"}.get(path.suffix.lower(), "image/png")
    else:
        data = source
    return f"data:{mime or 'image/png'};base64,{base64.b64encode(data).decode('ascii')}"


def figure(source: str | Path | bytes, caption: str = "", alt: str | None = None, width: int | None = None) -> str:
    size = f' style="max-width:{int(width)}px"' if width else ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data_uri(source)}" alt="{esc(alt or caption or "figure")}"{size}>{cap}</figure>'


def fmt_number(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] | None = None,
          row_classes: Sequence[str] | None = None, caption: str | None = None) -> str:
    """An HTML table; cells are escaped (floats formatted with 4 significant digits)."""
    rows = [list(r) for r in rows]
    numeric = list(numeric) if numeric is not None else [
        all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows if r[i] not in (None, ""))
        and any(r[i] not in (None, "") for r in rows)
        for i in range(len(headers))
    ]
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{esc(row_classes[k])}"' if row_classes and row_classes[k] else ""
        cells = "".join(
            f'<td class="num">{esc(fmt_number(v))}</td>' if numeric[i] else f"<td>{esc(fmt_number(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def page(title: str, parts: Sequence[str], subtitle: str | None = None) -> str:
    """A complete HTML document (no external resources)."""
    from .. import __version__

    meta = subtitle or f"saddlepoint {__version__} · {time.strftime('%Y-%m-%d %H:%M:%S')}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n<p class=\"meta\">{esc(meta)}</p>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def write_page(path: str | Path, title: str, parts: Sequence[str], subtitle: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page(title, parts, subtitle), encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------- one run
def read_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (a torn last line, as after a crash, is skipped)."""
    records = []
    try:
        lines = (Path(run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _last_sample(run_dir: Path) -> Path | None:
    final = run_dir / "samples" / "final.png"
    if final.is_file():
        return final
    steps = sorted((run_dir / "samples").glob("step_*.png"))
    return steps[-1] if steps else None


def eval_metric_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Numeric keys of the records other than the per-step training figures (i.e. evaluation metrics)."""
    skip = {"step", "time", "final", "event", "loss_g", "loss_d", "grad_norm_g", "grad_norm_d", "d_real", "d_fake",
            "grad_evals", "hvps", "player", "what"}
    names: list[str] = []
    for rec in records:
        for key, value in rec.items():
            if key in skip or key in names or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            names.append(key)
    return names


def write_run_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``run_dir/report.html`` for one run: summary, samples (and the training GIF), curves, config.

    Reads only the run directory (config.yaml, summary.json, metrics.jsonl, samples/); missing pieces
    are left out, so it also works for diverged or interrupted runs. Returns the report's path.
    """
    from .plots import plot_gradient_health, plot_metric_curves, plot_player_curves

    run_dir = Path(run_dir)
    summary = _read_json(run_dir / "summary.json")
    records = read_records(run_dir)
    try:
        config_text = (run_dir / "config.yaml").read_text(encoding="utf-8")
    except OSError:
        config_text = ""
    parts: list[str] = []
    status = summary.get("status", "unknown")
    rows = [("status", status), ("steps", summary.get("steps")), ("wall time (s)", summary.get("wall_time")),
            ("gradient evaluations", summary.get("grad_evals")), ("Hessian-vector products", summary.get("hvps"))]
    if summary.get("error"):
        rows.append(("error", summary["error"]))
    for key, value in (summary.get("metrics") or {}).items():
        rows.append((key, value))
    parts.append("<h2>Summary</h2>")
    parts.append(table(["", "value"], rows, numeric=[False, False]))
    refined = summary.get("refined") or {}
    if refined:  # eval.refine: the discriminator-driven samplers beside G (training/refined.py)
        keys = list(summary.get("metrics") or {})
        sampler_rows = [["G", *[summary["metrics"].get(k) for k in keys], 1.0, 1.0, 0.0]]
        for row in refined.values():
            cost = row.get("cost") or {}
            sampler_rows.append([row.get("label"), *[(row.get("metrics") or {}).get(k) for k in keys],
                                 cost.get("acceptance_rate"), cost.get("g_per_sample"), cost.get("d_per_sample")])
        parts.append("<h2>Discriminator-driven sampling</h2>")
        parts.append(table(["sampler", *keys, "acceptance", "G evals/sample", "D evals/sample"], sampler_rows,
                           numeric=[False] + [True] * (len(keys) + 3)))
    samples = _last_sample(run_dir)
    gif = run_dir / "samples" / "training.gif"
    if samples is not None or gif.is_file():
        parts.append("<h2>Samples</h2>")
        if samples is not None:
            parts.append(figure(samples, f"generator samples ({samples.stem})", width=560))
        if gif.is_file():
            parts.append(figure(gif, "generator samples over training", width=480))
    groups = {run_dir.name: [records]}
    if any("loss_g" in r for r in records):
        parts.append("<h2>Training curves</h2>")
        parts.append(figure(plot_player_curves(groups, title="players"), "per-player losses and gradient norms"))
    if any("grad_layers" in r for r in records):
        parts.append(figure(plot_gradient_health(records), "per-layer gradient norms (gradient health)"))
        warnings = [(r.get("step"), r["warning"]) for r in records if r.get("warning")]
        if warnings:
            parts.append(table(["step", "gradient-health warning"], warnings, numeric=[True, False]))
    metrics = eval_metric_names(records)
    if metrics:
        parts.append(figure(plot_metric_curves(groups, metrics[:6], title="evaluation metrics"),
                            f"{', '.join(metrics[:6])} against step and wall-clock time"))
    if config_text:
        parts.append("<h2>Configuration</h2>")
        parts.append(pre(config_text))
    versions = summary.get("versions") or {}
    subtitle = " · ".join([str(run_dir), *(f"{k} {v}" for k, v in versions.items())])
    return write_page(Path(out) if out else run_dir / "report.html", f"Run {run_dir.name}", parts, subtitle)
