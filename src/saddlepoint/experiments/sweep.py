"""Grid sweeps: the cartesian product of ``--grid`` values × seeds, run in K worker processes.

Layout of a sweep directory::

    DIR/sweep.json      manifest: the command's settings, the base config, the grid, the run list
    DIR/results.jsonl   one row per run (grid values, seed, status, error, final metrics, cost)
    DIR/results.csv     the same rows as CSV
    DIR/runs/<name>/    one ordinary run directory per grid point and seed (``<name>`` from the values)

Each worker is a fresh (spawned) process that runs ``torch.set_num_threads(cores // K)`` once and then
trains the runs it is handed, one at a time, so processes × threads never exceed the cores. A run that
raises is recorded with its error (``failed``), one that diverges with the loop's message (``diverged``);
a worker that dies outright is replaced and its run recorded as ``failed``. Re-running the same sweep
skips runs whose ``summary.json`` says ``completed`` or ``diverged`` (divergence is a deterministic
outcome, not a crash) and deletes and re-runs everything else.

This module imports neither torch nor matplotlib at import time: spawned workers must be able to set
their thread counts before torch starts its thread pools.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import os
import re
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, build_config, nest, to_dict
from ..errors import ConfigError, UserError

MANIFEST = "sweep.json"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
RUNS = "runs"
FORMAT = "saddlepoint-sweep"

#: statuses after which a run is not repeated by a re-run of the sweep
FINAL_STATUSES = ("completed", "diverged")
#: config keys that do not change what a run computes (ignored when checking a finished run's config)
NUISANCE_KEYS = ("seed", "train.threads", "log.progress", "log.every", "log.tensorboard", "checkpoint.every",
                 "checkpoint.keep", "train.sample_every")
#: leading columns of results rows (metrics follow, then the cost columns)
COST_COLUMNS = ("steps", "grad_evals", "hvps", "wall_time")

Runner = Callable[[dict[str, Any], Path], Any]


# ---------------------------------------------------------------------------------- grid parsing
def split_values(text: str) -> list[str]:
    """``"1e-3,[1e-3,2e-3],adam"`` → ``["1e-3", "[1e-3,2e-3]", "adam"]`` (commas inside brackets kept)."""
    out, depth, current = [], 0, []
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    out.append("".join(current).strip())
    return out


def parse_grid(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``["optim.name=adam,sgd", "loss.name=ns"]`` → ``{"optim.name": ["adam", "sgd"], "loss.name": ["ns"]}``."""
    grid: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--grid {pair!r}: expected KEY=V1,V2,...")
        values = split_values(text)
        if any(v == "" for v in values):
            raise UserError(f"--grid {pair!r}: empty value (expected KEY=V1,V2,...)")
        if key in grid:
            raise UserError(f"--grid {key}: given twice; put all its values in one --grid {key}=V1,V2")
        if len(set(values)) != len(values):
            raise UserError(f"--grid {pair!r}: a value is repeated")
        grid[key] = values
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid, first key varying slowest (an empty grid gives one point)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def value_text(value: Any) -> str:
    """How a grid value is spelled in run names and logs."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    return str(value)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=-]+")


def run_name(values: Mapping[str, Any], seed: int, max_len: int = 150) -> str:
    """A file-name-safe directory name from grid values and seed: ``optim.name=adam__loss.name=ns__seed=0``."""
    parts = [f"{key}={value_text(value)}" for key, value in values.items()] + [f"seed={seed}"]
    name = _UNSAFE.sub("_", "__".join(parts)).strip("._") or "run"
    if len(name) > max_len:
        name = f"{name[: max_len - 9]}-{_digest(parts)}"
    return name


def _digest(obj: Any) -> str:
    import hashlib

    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


# ---------------------------------------------------------------------------------- cores and threads
def available_cores() -> int:
    """CPU cores this process may use: the affinity mask, capped by a cgroup v2 CPU quota if any."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    return max(1, cores)


def plan_workers(workers: int, n_runs: int, cores: int | None = None) -> tuple[int, int, str | None]:
    """``(processes, threads per process, note)`` with processes × threads ≤ cores."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UserError(f"--workers: must be a positive integer, got {workers!r}")
    cores = cores or available_cores()
    note = None
    if workers > cores:
        note = f"--workers {workers} exceeds the {cores} available cores; using {cores} worker processes"
        workers = cores
    processes = max(1, min(workers, n_runs))
    return processes, max(1, cores // workers), note


# ---------------------------------------------------------------------------------- planning
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


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
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
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise UserError(f"--seeds: must be a positive integer, got {seeds!r}")
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
        check_config(build_config(*base_layers, nest(dict(point)), dataset_defaults=True), where)
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
                spec.name = f"{spec.name}-{_digest([spec.values, spec.seed])}"
    return to_dict(base), specs


def check_config(cfg: Config, where: str) -> None:
    """Catch what fails at once in every run before starting any: registry names (data, model, loss,
    penalties, optimizer, metrics) and the optimizer's hyper-parameters (built on dummy players)."""
    import torch

    from ..data import DATASETS
    from ..losses import LOSSES, PENALTIES
    from ..metrics import METRICS
    from ..models import MODELS
    from ..optim import build

    try:
        DATASETS.get(cfg.data.name, "data.name")
        MODELS.get(cfg.model.name, "model.name")
        LOSSES.get(cfg.loss.name, "loss.name")
        for name in cfg.loss.penalty:
            PENALTIES.get(name, "loss.penalty")
        for name in cfg.eval.metrics:
            METRICS.get(name, "eval.metrics")
        players = [[torch.zeros(1, requires_grad=True)], [torch.zeros(1, requires_grad=True)]]
        build(cfg.optim.name, players, **cfg.optim.hyper_parameters())
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


# ---------------------------------------------------------------------------------- rows and files
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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    _atomic_write(out / RESULTS_JSONL, "".join(line + "\n" for line in lines))
    _atomic_write(out / RESULTS_CSV, rows_to_csv(rows, columns))


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
    _atomic_write(out / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")


def _config_mismatch(run_dir: Path, expected: dict[str, Any]) -> str | None:
    """The first key (present in both) where the run's config.yaml differs from the sweep's, or None."""
    from ..config import read_yaml

    try:
        stored = flatten(read_yaml(run_dir / "config.yaml"))
    except UserError:
        return None
    want = flatten(expected)
    for key in sorted(set(stored) & set(want)):
        if key in NUISANCE_KEYS:
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


# ---------------------------------------------------------------------------------- workers
def _default_runner(config: dict[str, Any], out: Path) -> Any:
    from ..train.loop import train

    return train(config, out)


def _execute(task: dict[str, Any], runner: Runner) -> dict[str, Any]:
    """Run one task in a worker; never raises (except BaseExceptions that end the worker)."""
    from ..errors import DivergenceError

    run_dir = Path(task["dir"])
    t0 = time.perf_counter()
    status, error, tb = "completed", None, None
    try:
        runner(task["config"], run_dir)
    except DivergenceError as exc:
        status, error = "diverged", str(exc)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted"
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, the sweep goes on
        status = "interrupted" if type(exc).__name__ == "Interrupted" else "failed"
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


def _worker_main(conn: Any, threads: int, runner: Runner | None) -> None:
    """A worker process: set the thread counts before torch starts, then run tasks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the training loop installs its own handler per run
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    runner = runner or _default_runner
    conn.send({"ready": os.getpid()})
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(_execute(task, runner))


class _Pool:
    """K spawned worker processes fed one task at a time over pipes; a dead worker is replaced."""

    def __init__(self, size: int, threads: int, runner: Runner | None) -> None:
        import multiprocessing

        self.ctx = multiprocessing.get_context("spawn")
        self.size, self.threads, self.runner = size, threads, runner
        self.workers: list[dict[str, Any]] = []
        self.start_failures = 0

    def _start(self) -> dict[str, Any]:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(child, self.threads, self.runner), daemon=True,
                                name="saddlepoint-sweep-worker")
        proc.start()
        child.close()
        worker = {"proc": proc, "conn": parent, "task": None, "ready": False}
        self.workers.append(worker)
        return worker

    def _drop(self, worker: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            worker["conn"].close()
        worker["proc"].join(timeout=5)
        self.workers.remove(worker)

    def run(self, tasks: Iterable[dict[str, Any]], on_result: Callable[[dict[str, Any]], None]) -> None:
        from multiprocessing.connection import wait

        pending = list(tasks)
        pending.reverse()
        while pending or any(w["task"] is not None for w in self.workers):
            while pending and (len(self.workers) < self.size or any(w["task"] is None for w in self.workers)):
                worker = next((w for w in self.workers if w["task"] is None), None) or self._start()
                task = pending.pop()
                worker["task"] = task
                try:
                    worker["conn"].send(task)
                except OSError:  # died before taking it: retry on a fresh worker
                    pending.append(task)
                    self._drop(worker)
            busy = [w for w in self.workers if w["task"] is not None]
            wait([w["conn"] for w in busy] + [w["proc"].sentinel for w in busy])
            for worker in busy:
                task = worker["task"]
                got = self._receive(worker)
                if got is not None:
                    worker["task"] = None
                    on_result(got)
                elif not worker["proc"].is_alive():
                    code = worker["proc"].exitcode
                    self._drop(worker)
                    if not worker["ready"]:  # it never started: not this run's fault
                        self.start_failures += 1
                        if self.start_failures >= 2:
                            raise UserError(
                                f"sweep: worker processes exit at start-up (exit code {code}; see the messages "
                                "above); from a script, call sweep() under 'if __name__ == \"__main__\":'")
                        pending.append(task)
                        continue
                    on_result({"index": task["index"], "status": "failed", "traceback": None, "wall_time": None,
                               "error": f"the worker process died (exit code {code}) while running this run"})

    @staticmethod
    def _receive(worker: dict[str, Any]) -> dict[str, Any] | None:
        """The worker's result message if one is waiting (start-up "ready" messages are noted and skipped)."""
        with contextlib.suppress(EOFError, OSError):
            while worker["conn"].poll():
                got = worker["conn"].recv()
                if "ready" not in got:
                    return got
                worker["ready"] = True
        return None

    def interrupt(self) -> None:
        for worker in self.workers:
            if worker["task"] is not None and worker["proc"].is_alive():
                with contextlib.suppress(OSError):
                    os.kill(worker["proc"].pid, signal.SIGINT)

    def drain(self, on_result: Callable[[dict[str, Any]], None], timeout: float = 60.0) -> None:
        """After an interrupt: collect what the busy workers report (they checkpoint) for up to ``timeout``."""
        from multiprocessing.connection import wait

        deadline = time.monotonic() + timeout
        while any(w["task"] is not None for w in self.workers) and time.monotonic() < deadline:
            busy = [w for w in self.workers if w["task"] is not None]
            wait([w["conn"] for w in busy] + [w["proc"].sentinel for w in busy], timeout=1.0)
            for worker in busy:
                got = self._receive(worker)
                if got is not None:
                    worker["task"] = None
                    on_result(got)
                elif not worker["proc"].is_alive():
                    worker["task"] = None

    def close(self) -> None:
        for worker in list(self.workers):
            with contextlib.suppress(OSError):
                if worker["task"] is None:
                    worker["conn"].send(None)
        for worker in list(self.workers):
            worker["proc"].join(timeout=10 if worker["task"] is None else 0.1)
            if worker["proc"].is_alive():
                worker["proc"].terminate()
                worker["proc"].join(timeout=5)
            with contextlib.suppress(OSError):
                worker["conn"].close()
        self.workers.clear()


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


# ---------------------------------------------------------------------------------- the sweep
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
    replaces :func:`saddlepoint.train.loop.train` (it must be importable by name: workers are spawned).
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
        skipped = len(specs) - len(todo)
        processes = max(1, min(processes, len(todo)))

        def save() -> None:
            write_results(out, rows, list(grid))
            write_manifest(out, settings, base, grid, specs, rows, processes, threads, previous.get("created"))

        save()
        log(f"sweep {out}: {len(specs)} runs, {skipped} already finished, {len(todo)} to run"
            + (f" in {processes} worker process(es) × {threads} thread(s)" if todo else ""))
        done = 0

        def on_result(result: dict[str, Any]) -> None:
            nonlocal done
            spec = specs[result["index"]]
            summary = read_summary(out / spec.rel_dir)
            rows[spec.index] = make_row(spec, result["status"], result.get("error"), summary, result.get("wall_time"))
            done += 1
            row = rows[spec.index]
            extra = f": {row['error']}" if row.get("error") else ""
            log(f"[{done}/{len(todo)}] {spec.name}: {row['status']}{extra}")
            save()

        interrupted = False
        if todo:
            pool = _Pool(processes, threads, runner)
            tasks = [{"index": s.index, "dir": str(out / s.rel_dir), "config": s.config, "name": s.name} for s in todo]
            try:
                with _sigterm_as_interrupt():
                    pool.run(tasks, on_result)
            except KeyboardInterrupt:
                interrupted = True
                log("interrupted: waiting for running runs to save a checkpoint")
                pool.interrupt()
                with contextlib.suppress(KeyboardInterrupt):
                    pool.drain(on_result)
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
