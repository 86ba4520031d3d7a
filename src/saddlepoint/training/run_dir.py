"""The run directory: what a run writes and the rules for continuing it.

Layout (CONTRACTS.md): ``config.yaml`` · ``metrics.jsonl`` · ``samples/`` · ``checkpoints/last.pt``
(+ ``step_*.pt``, ``best.pt``) · ``summary.json`` · ``report.html``. :class:`RunDir` writes them on the
main rank only (through the :class:`~saddlepoint.training.world.World`; on other ranks every write is
a no-op), so the loop calls it on every rank. A directory is opened by ONE handshake, shared by a new
run (:meth:`RunDir.create`) and a resumed one (:meth:`RunDir.reopen`): rank 0 prepares it and every
rank learns its path or rank 0's error. Which configuration changes a resume accepts is the config's
one policy (:data:`saddlepoint.config.RESUMABLE_KEYS`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch import Tensor

from ..config import RESUMABLE_KEYS, Config, dump_yaml, run_changes
from ..errors import UserError
from ..io import atomic_torch_save, atomic_write_text
from ..report.animation import TrainingAnimation
from ..report.html import write_run_report
from ..report.tensorboard import TensorBoardLogger
from .checkpoint import Resumable, set_aside
from .progress import Progress
from .sampling import render
from .world import World


def prepare_out_dir(out: Path | None, cfg: Config) -> Path:
    """A new, writable run directory (default ``runs/<data>-<loss>-<optim>-<time>``); never an existing run."""
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{cfg.data.name}-{cfg.loss.name}-{cfg.optim.name}-{stamp}"
    out = Path(out)
    if (out / "config.yaml").exists() or (out / "checkpoints").exists():
        raise UserError(f"--out {out}: already holds a run; use 'saddlepoint resume {out}' or another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    return out


def truncate_log(path: Path, step: int) -> None:
    """Drop records written after the checkpoint (and any torn last line) so the log matches the state."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step and not record.get("final"):
            kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


def check_resumable(run_dir: Path, old: Config, new: Config, force: bool) -> None:
    """Refuse (unless ``force``) a resume whose configuration differs in keys that change the run."""
    changed = run_changes(old, new, RESUMABLE_KEYS)
    if changed and not force:
        raise UserError(f"resume {run_dir}: configuration differs from the checkpoint in {', '.join(changed)} "
                        "(use --force to resume anyway)")


class RunDir:
    """One run's directory as seen from one rank of the job (writes happen on the main rank)."""

    def __init__(self, path: str | Path, world: World | None = None) -> None:
        self.path = Path(path)
        self.world = world if world is not None else World()
        self.tb: TensorBoardLogger | None = None
        self.animation: TrainingAnimation | None = None

    # -- opening: the one handshake
    @classmethod
    def handshake(cls, world: World, prepare: Callable[[], Path]) -> RunDir:
        """``prepare()`` on rank 0 (it creates or updates the directory); its path, or its error, on every rank."""
        return cls(Path(world.agree(lambda: str(prepare()))), world)

    @classmethod
    def create(cls, out: str | Path | None, cfg: Config, world: World) -> RunDir:
        """A new run: an empty directory with the resolved ``config.yaml``."""

        def prepare() -> Path:
            path = prepare_out_dir(Path(out) if out is not None else None, cfg)
            atomic_write_text(path / "config.yaml", dump_yaml(cfg))
            return path

        return cls.handshake(world, prepare)

    @classmethod
    def reopen(cls, path: str | Path, cfg: Config, found: Resumable, step: int, world: World) -> RunDir:
        """A resumed run: damaged checkpoints set aside (one line on stderr), the log cut back to ``step``,
        the new ``config.yaml``."""
        path = Path(path)

        def prepare() -> Path:
            if found.damaged:
                try:
                    moved = set_aside(found.damaged)
                except OSError as exc:
                    raise UserError(f"cannot set aside the damaged checkpoint {found.damaged[0]}: "
                                    f"{exc.strerror or exc}") from None
                print(f"warning: {found.damaged[0]} is damaged; resuming from {found.path.name} (step {step}); "
                      f"kept aside as {', '.join(p.name for p in moved)}", file=sys.stderr, flush=True)
            truncate_log(path / "metrics.jsonl", step)
            atomic_write_text(path / "config.yaml", dump_yaml(cfg))
            return path

        return cls.handshake(world, prepare)

    # -- writes (main rank only)
    def log(self, record: dict[str, Any]) -> None:
        """Append one record to ``metrics.jsonl`` (and TensorBoard when on)."""
        if not self.world.main:
            return
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.tb is not None:
            self.tb.log(record)

    def write_summary(self, summary: Callable[[], dict[str, Any]]) -> None:
        path = self.path / "summary.json"
        self.world.on_main(lambda: atomic_write_text(path, json.dumps(summary(), indent=2) + "\n"))

    def save_samples(self, name: str, draw: Callable[[], Tensor], dataset: Any, title: str = "") -> Path:
        """``samples/<name>.png``: the samples ``draw()`` as a scatter plot (2-D) or a grid of 8 per row."""
        path = self.path / "samples" / f"{name}.png"
        self.world.on_main(lambda: render(draw(), path, dataset, title, nrow=8))
        return path

    def save_checkpoint(self, state: Callable[[], dict[str, Any]], step: int, keep: int) -> Path:
        """Write ``checkpoints/last.pt`` atomically and keep the last ``keep`` as ``step_*.pt`` hard links
        to the same bytes."""
        last = self.path / "checkpoints" / "last.pt"
        self.world.on_main(lambda: self._save_numbered(state(), last, step, keep))
        return last

    @staticmethod
    def _save_numbered(state: dict[str, Any], last: Path, step: int, keep: int) -> None:
        atomic_torch_save(state, last)
        if keep > 1:
            numbered = last.with_name(f"step_{step:08d}.pt")
            numbered.unlink(missing_ok=True)
            try:
                os.link(last, numbered)
            except OSError:
                atomic_torch_save(state, numbered)
            for path in sorted(last.parent.glob("step_*.pt"))[: -(keep - 1)]:
                path.unlink(missing_ok=True)

    def save_best(self, state: Callable[[], dict[str, Any]]) -> None:
        self.world.on_main(lambda: atomic_torch_save(state(), self.path / "checkpoints" / "best.pt"))

    def write_report(self) -> None:
        """``report.html`` (a failure is a warning: a report never hides the run's own outcome)."""
        try:
            self.world.on_main(lambda: write_run_report(self.path))
        except Exception as exc:  # noqa: BLE001
            print(f"warning: report.html not written: {exc}", file=sys.stderr)

    # -- live outputs of one session of training
    @contextlib.contextmanager
    def session(self, cfg: Config, step: int, dataset: Any, draw: Callable[[int], Any]) -> Iterator[Progress]:
        """Progress display, TensorBoard and (2-D data) the training GIF while the loop runs; ``draw(n)``
        gives ``n`` generator samples for a frame."""
        progress = Progress(cfg, step, enabled=self.world.main)
        if self.world.main and getattr(dataset, "kind", "") == "points":
            self.animation = TrainingAnimation.for_steps(self.path / "samples" / "training.gif", cfg.train.steps,
                                                         centers=getattr(dataset, "centers", None))
            if step == 0:
                self.animation.add(draw(512), 0)
        if cfg.log.tensorboard and self.world.main:
            self.tb = TensorBoardLogger(self.path, start_step=step)
        try:
            yield progress
        finally:
            progress.close()
            if self.animation is not None:
                self.animation.save()
                self.animation = None
            if self.tb is not None:
                self.tb.close()
                self.tb = None

    def frame_due(self, step: int) -> bool:
        return self.animation is not None and self.animation.due(step)

    def add_frame(self, points: Any, step: int) -> None:
        if self.animation is not None:
            self.animation.add(points, step)
