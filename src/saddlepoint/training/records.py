"""What a run reports: one ``metrics.jsonl`` record per logged step and ``summary.json``.

Both read a :class:`~saddlepoint.training.loop.Trainer` (duck-typed: ``step``, ``elapsed``, ``opt``,
``status``, ``last_metrics``, ``best``, ``cfg``, ``dataset``, ``out``); :class:`~.run_dir.RunDir`
writes them on the main rank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..metrics import evaluation_protocol
from .checkpoint import versions
from .evaluation import metric_names

PLAYERS = ("G", "D")


def step_record(t: Any, losses: list[float], aux: dict[str, float]) -> dict[str, Any]:
    """Step, wall time, per-player losses and gradient norms, diagnostics, cost counters (fp16: loss scale)."""
    rec: dict[str, Any] = {"step": t.step, "time": round(t.elapsed, 4)}
    for name, loss, norm in zip(PLAYERS, losses, t.opt.last_grad_norms):
        rec[f"loss_{name.lower()}"] = loss
        rec[f"grad_norm_{name.lower()}"] = norm
    rec.update(aux)
    rec["grad_evals"] = t.opt.counts["grad"]
    rec["hvps"] = t.opt.counts["hvp"]
    stats = t.opt.stats()
    if stats:  # zeroth-order diagnostics, nested so that reports do not take them for evaluation metrics
        rec["optim_stats"] = stats
    if t.opt.scaler is not None:  # fp16: the loss scale and the number of skipped steps so far
        rec["amp_scale"] = t.opt.scaler.scale
        rec["amp_skipped"] = t.opt.scaler.skipped
    return rec


def summary(t: Any, samples: Path | None = None, error: str | None = None) -> dict[str, Any]:
    """Status, steps, wall time, final metrics (and the evaluation protocol), costs, best, versions."""
    counts = t.opt.counts
    out = {"status": t.status, "steps": t.step, "wall_time": round(t.elapsed, 3), "metrics": t.last_metrics,
           "grad_evals": counts["grad"], "hvps": counts["hvp"], "closure_calls": counts["closure"],
           "versions": versions()}
    if t.last_metrics:
        out["protocol"] = evaluation_protocol(metric_names(t.cfg, t.dataset), t.dataset, t.cfg.eval.samples,
                                              t.cfg.eval)
    if t.best:
        out["best"] = t.best
    if t.refined:  # eval.refine: the refined samplers' rows beside G (training/refined.py)
        out["refined"] = t.refined
    if samples is not None:
        out["samples"] = str(samples.relative_to(t.out))
    if error is not None:
        out["error"] = error
    return out
