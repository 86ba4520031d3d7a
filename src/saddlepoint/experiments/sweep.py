"""Grid sweeps: the cartesian product of ``--grid`` values × seeds, run in K worker processes.

Layout of a sweep directory::

    DIR/sweep.json      manifest: the command's settings, the base config, the grid, the run list
    DIR/results.jsonl   one row per run (grid values, seed, status, error, final metrics, cost)
    DIR/results.csv     the same rows as CSV
    DIR/runs/<name>/    one ordinary run directory per grid point and seed (``<name>`` from the values)

Each worker (:mod:`.pool`) is a fresh spawned process that sets its thread counts to cores // K once and then
trains the runs it is handed, one at a time, so processes × threads never exceed the cores. A run that
raises is recorded with its error (``failed``), one that diverges with the loop's message (``diverged``);
a worker that dies outright is replaced and its run recorded as ``failed``. Re-running the same sweep
skips runs whose ``summary.json`` says ``completed`` or ``diverged`` (divergence is a deterministic
outcome, not a crash) and deletes and re-runs everything else. Every run's config is resolved with the
same layering rule as ``saddlepoint train`` (a grid point naming another optimizer drops the base's keys
it does not take; :func:`saddlepoint.config.build_config`).

This module imports neither torch nor matplotlib at import time: spawned workers must be able to set
their thread counts before torch starts its thread pools.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import positive_int
from ..config import Config, build_config, is_run_invariant, nest, to_dict
from ..errors import ConfigError, DivergenceError, Interrupted, UserError
from ..system import available_cores
from .grid import digest, expand_grid, flatten, parse_grid, run_name, split_values, value_text
from .pool import WorkerPool
from .results import (
    COST_COLUMNS,
    FORMAT,
    MANIFEST,
    RESULTS_CSV,
    RESULTS_JSONL,
    RUNS,
    RunSpec,
    make_row,
    read_summary,
    result_columns,
    rows_to_csv,
    write_manifest,
    write_results,
)

__all__ = [
    "COST_COLUMNS", "FINAL_STATUSES", "FORMAT", "MANIFEST", "NUISANCE_KEYS", "RESULTS_CSV", "RESULTS_JSONL",
    "RUNS", "RunSpec", "SweepResult", "available_cores", "check_config", "expand_grid", "flatten", "make_row",
    "parse_grid", "plan_runs", "plan_workers", "read_summary", "result_columns", "rows_to_csv", "run_name",
    "split_values", "sweep", "value_text", "write_manifest", "write_results",
]

#: statuses after which a run is not repeated by a re-run of the sweep
FINAL_STATUSES = ("completed", "diverged")
#: flattened config keys that do not tell configurations apart when runs are pooled (the seed, and the
#: keys :data:`saddlepoint.config.RUN_INVARIANT_KEYS` says do not change a run); read by ``compare``
NUISANCE_KEYS: tuple[str, ...] = ("seed", *(k for k in flatten(to_dict(Config())) if is_run_invariant(k)))

Runner = Callable[[dict[str, Any], Path], Any]


# ---------------------------------------------------------------------------------- workers and threads
def plan_workers(workers: int, n_runs: int, cores: int | None = None) -> tuple[int, int, str | None]:
    """``(processes, threads per process, note)`` with processes × threads ≤ cores."""
    workers = positive_int("--workers", workers)
    cores = cores or available_cores()
    note = None
    if workers > cores:
        note = f"--workers {workers} exceeds the {cores} available cores; using {cores} worker processes"
        workers = cores
    processes = max(1, min(workers, n_runs))
    return processes, max(1, cores // workers), note


# ---------------------------------------------------------------------------------- planning
@dataclass
class SweepResult:
    """What :func:`sweep` did: the sweep directory, one row per run and how many runs were executed."""

    out: Path
    rows: list[dict[str, Any]]
    executed: int
    skipped: int
    workers: int
    threads: int
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row["status"] == status)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out


def _layers(config: Config | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if config is None:
        return []
    if isinstance(config, Config):
        return [to_dict(config)]
    if isinstance(config, Mapping):
        return [dict(config)]
    return [dict(layer) for layer in config]


def plan_runs(layers: list[dict[str, Any]], grid: Mapping[str, Sequence[Any]], seeds: int,
              threads: int) -> tuple[dict[str, Any], list[RunSpec]]:
    """Resolve and validate every run's config up front (bad keys or values fail before anything runs)."""
    seeds = positive_int("--seeds", seeds)
    if "seed" in grid:
        raise UserError("--grid seed=...: seeds are not a grid key; use --seeds N (seeds are pooled by compare)")
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise UserError(f"--grid {key}: needs at least one value")
    base_layers = [{"log": {"progress": "none"}}, *layers]
    base = build_config(*base_layers, dataset_defaults=True)  # errors here come from --config/--set and name their key
    for key, values in grid.items():
        for value in values:
            try:
                build_config(*base_layers, nest({key: value}), dataset_defaults=True)
            except ConfigError as exc:
                raise ConfigError(f"--grid {key}={value_text(value)}: {exc}") from None
    check_config(base, "")
    specs: list[RunSpec] = []
    names: dict[str, int] = {}
    for point in expand_grid(grid):
        where = "--grid " + " ".join(f"{k}={value_text(v)}" for k, v in point.items()) + ": " if point else ""
        try:
            cfg = build_config(*base_layers, nest(dict(point)), dataset_defaults=True)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None
        check_config(cfg, where)
        for i in range(seeds):
            seed = base.seed + i
            cfg = build_config(*base_layers, nest(dict(point)), {"seed": seed, "train": {"threads": threads}},
                               dataset_defaults=True)
            resolved = to_dict(cfg)
            flat = flatten(resolved)
            values = {key: flat.get(key, point[key]) for key in grid}
            name = run_name({k: point[k] for k in grid}, seed)
            specs.append(RunSpec(len(specs), name, values, seed, resolved))
            names[name] = names.get(name, 0) + 1
    if any(count > 1 for count in names.values()):  # values that differ only in unsafe characters
        for spec in specs:
            if names[spec.name] > 1:
                spec.name = f"{spec.name}-{digest([spec.values, spec.seed])}"
    return to_dict(base), specs


def check_config(cfg: Config, where: str) -> None:
    """Catch what fails at once in every run before starting any: registry names (data, model, loss,
    penalties, optimizer, metrics) and the optimizer's hyper-parameters (built on dummy players)."""
    import torch

    from ..data import DATASETS
    from ..losses import build_loss, build_penalties
    from ..metrics import METRICS
    from ..models import MODELS
    from ..optim import build

    try:
        DATASETS.get(cfg.data.name, "data.name")
        MODELS.get(cfg.model.name, "model.name")
        build_loss(cfg.loss.name, **cfg.loss.options())
        build_penalties(cfg.loss)
        for name in cfg.eval.metrics:
            METRICS.get(name, "eval.metrics")
        players = [[torch.zeros(1, requires_grad=True)], [torch.zeros(1, requires_grad=True)]]
        build(cfg.optim.name, players, **cfg.optim.hyper_parameters())
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


def _config_mismatch(run_dir: Path, expected: dict[str, Any]) -> str | None:
    """The first key (present in both) where the run's config.yaml differs from the sweep's in a way that
    changes the run (:func:`saddlepoint.config.is_run_invariant`), or None."""
    from ..config import read_yaml

    try:
        stored = flatten(read_yaml(run_dir / "config.yaml"))
    except UserError:
        return None
    want = flatten(expected)
    for key in sorted(set(stored) & set(want)):
        if is_run_invariant(key):
            continue
        if stored[key] != want[key] and not _close(stored[key], want[key]):
            return f"{key}: {stored[key]!r} there, {want[key]!r} now"
    return None


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(x == y or _close(x, y) for x, y in zip(a, b))
    return False


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    fh = open(out / ".sweep.lock", "w")  # noqa: SIM115
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"--out {out}: another sweep is running in this directory") from None
        yield
    finally:
        fh.close()


# ---------------------------------------------------------------------------------- in the workers
def init_worker(threads: int) -> None:
    """A worker's start: its thread counts before torch starts; SIGINT left to the training loop's handler."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the training loop installs its own handler per run
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def default_runner(config: dict[str, Any], out: Path) -> Any:
    from .. import train

    return train(config, out)


def _interrupt_types() -> tuple[type[BaseException], ...]:
    """:class:`saddlepoint.errors.Interrupted`, and the trainer's own class while it still has one."""
    found: list[type[BaseException]] = [Interrupted]
    with contextlib.suppress(ImportError, AttributeError):  # transitional: the trainer raises errors.Interrupted
        from .. import training

        if isinstance(training.Interrupted, type) and not issubclass(training.Interrupted, Interrupted):
            found.append(training.Interrupted)
    return tuple(found)


def execute_run(task: dict[str, Any], runner: Runner | None = None) -> dict[str, Any]:
    """Run one task in a worker; never raises (except BaseExceptions that end the worker)."""
    run_dir = Path(task["dir"])
    t0 = time.perf_counter()
    status, error, tb = "completed", None, None
    try:
        (runner or default_runner)(task["config"], run_dir)
    except DivergenceError as exc:
        status, error = "diverged", str(exc)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted"
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, the sweep goes on
        status = "interrupted" if isinstance(exc, _interrupt_types()) else "failed"
        error = str(exc) if isinstance(exc, UserError) or status == "interrupted" else f"{type(exc).__name__}: {exc}"
        error = error.strip().splitlines()[0] if error.strip() else type(exc).__name__
        tb = traceback.format_exc()
        with contextlib.suppress(OSError):
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.txt").write_text(tb, encoding="utf-8")
    summary = read_summary(run_dir)
    if status == "completed" and (summary is None or summary.get("status") != "completed"):
        status = "failed"
        error = "the run ended without a completed summary.json"
    return {"index": task["index"], "status": status, "error": error, "traceback": tb,
            "wall_time": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------- the sweep
def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _previous_rows(out: Path, specs: list[RunSpec]) -> tuple[list[dict[str, Any]], list[RunSpec]]:
    """Rows of the runs a re-run keeps (finished, same configuration) and the specs still to run."""
    rows: list[dict[str, Any]] = []
    todo: list[RunSpec] = []
    for spec in specs:
        run_dir = out / spec.rel_dir
        summary = read_summary(run_dir)
        if summary is not None and summary.get("status") in FINAL_STATUSES:
            mismatch = _config_mismatch(run_dir, spec.config)
            if mismatch:
                raise UserError(f"--out {out}: run {spec.name} was made with another configuration "
                                f"({mismatch}); use another --out")
            rows.append(make_row(spec, summary["status"], summary=summary))
            continue
        if run_dir.exists():
            shutil.rmtree(run_dir)  # a partial or failed run: start it afresh
        rows.append(make_row(spec, "pending"))
        todo.append(spec)
    return rows, todo


def sweep(
    config: Config | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    seeds: int = 1,
    workers: int = 1,
    out: str | Path,
    runner: Runner | None = None,
    settings: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = _stderr,
) -> SweepResult:
    """Run ``grid`` × ``seeds`` on top of ``config`` in ``workers`` processes; write the sweep directory.

    ``config`` is a nested dict, a :class:`Config` or a list of nested dicts applied in order (e.g. a YAML
    file, then ``--set`` overrides). ``grid`` maps dotted keys to value lists (strings are parsed like
    ``--set`` values). Seeds are ``config.seed + 0 .. seeds − 1``. ``runner(config_dict, run_dir)``
    replaces :func:`saddlepoint.train` (it must be importable by name: workers are spawned).
    Returns a :class:`SweepResult`; ``executed`` counts the runs started by this call.
    """
    log = log or (lambda message: None)
    grid = dict(grid or {})
    out = Path(out)
    if (out / "config.yaml").exists() or (out / "checkpoints").is_dir():
        raise UserError(f"--out {out}: is a run directory; give a new or sweep directory")
    layers = _layers(config)
    total = len(expand_grid(grid)) * (seeds if isinstance(seeds, int) and not isinstance(seeds, bool) else 1)
    processes, threads, note = plan_workers(workers, max(1, total))
    notes = [note] if note else []
    for n in notes:
        log(f"note: {n}")
    base, specs = plan_runs(layers, grid, seeds, threads)
    try:
        (out / RUNS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    previous = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    settings = dict(settings or {"grid": {k: [value_text(v) for v in vs] for k, vs in grid.items()},
                                 "seeds": seeds, "workers": workers})
    with _lock(out):
        rows, todo = _previous_rows(out, specs)
        skipped = len(specs) - len(todo)
        processes = max(1, min(processes, len(todo)))

        def save() -> None:
            write_results(out, rows, list(grid))
            write_manifest(out, settings, base, grid, specs, rows, processes, threads, previous.get("created"))

        save()
        log(f"sweep {out}: {len(specs)} runs, {skipped} already finished, {len(todo)} to run"
            + (f" in {processes} worker process(es) × {threads} thread(s)" if todo else ""))
        done = 0

        def on_done(task: dict[str, Any], result: dict[str, Any]) -> None:
            nonlocal done
            spec = specs[task["index"]]
            summary = read_summary(out / spec.rel_dir)
            rows[spec.index] = make_row(spec, result["status"], result.get("error"), summary, result.get("wall_time"))
            done += 1
            row = rows[spec.index]
            extra = f": {row['error']}" if row.get("error") else ""
            log(f"[{done}/{len(todo)}] {spec.name}: {row['status']}{extra}")
            save()

        def on_died(task: dict[str, Any], code: int | None) -> None:
            on_done(task, {"status": "failed", "traceback": None, "wall_time": None,
                           "error": f"the worker process died (exit code {code}) while running this run"})

        interrupted = False
        if todo:
            pool = WorkerPool(processes, init_worker, (threads,))
            tasks = [{"index": s.index, "dir": str(out / s.rel_dir), "config": s.config, "name": s.name} for s in todo]
            try:
                with _sigterm_as_interrupt():
                    pool.run(functools.partial(execute_run, runner=runner), tasks, on_done, on_died)
            except KeyboardInterrupt:
                interrupted = True
                log("interrupted: waiting for running runs to save a checkpoint")
                pool.interrupt()
                with contextlib.suppress(KeyboardInterrupt):
                    pool.drain(on_done)
                for row in rows:
                    if row["status"] == "pending":
                        row["status"] = "interrupted"
                save()
            finally:
                pool.close()
        result = SweepResult(out, rows, executed=done, skipped=skipped, workers=processes, threads=threads,
                             interrupted=interrupted, notes=notes)
    if interrupted:
        raise KeyboardInterrupt
    return result
