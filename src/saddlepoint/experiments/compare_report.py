"""The plots and ``report.html`` of a comparison (see :mod:`.compare`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .compare import Comparison, Group, canon, identity, run_rows, shared_keys, table_rows
from .sweep import value_text


def make_plots(comparison: Comparison, max_groups: int = 10, max_seeds: int = 3) -> list[tuple[str, Path]]:
    """Write ``plots/*.png``; returns ``[(caption, path), ...]`` in report order."""
    from ..metrics import metric_kinds
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
        points = any(metric_kinds(k) == {"points"} for g in shown for r in g.runs for k in r.metrics) \
            or kinds <= {"ring", "grid"}
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
    identities = [identity(r, shared_keys(c.runs)) for r in c.runs]
    common = {k: v for k, v in identities[0].items()
              if all(canon(ident.get(k, "—")) == canon(v) for ident in identities[1:])} if identities else {}
    from ..config import nest

    parts.append("<h3>Shared by all runs</h3>")
    parts.append(H.pre(yaml.safe_dump(nest(common), sort_keys=False) if common else "(nothing)"))
    if c.varying:
        parts.append("<h3>Per configuration</h3>")
        parts.append(H.table(["#", *c.varying], [[i, *(value_text(g.values.get(k)) for k in c.varying)]
                                                 for i, g in enumerate(c.groups, 1)],
                             numeric=[True] + [False] * len(c.varying)))
    for i, group in enumerate(c.groups, 1):
        config = nest(identity(group.runs[0]))
        parts.append(H.details(f"#{i} {group.label}: full configuration",
                               H.pre(yaml.safe_dump(config, sort_keys=False))))
    return H.write_page(c.out / "report.html", title or "saddlepoint comparison", parts)
