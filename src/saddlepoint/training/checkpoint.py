"""Checkpoints: tensors and plain containers only, written atomically, loaded with weights_only=True.

A checkpoint is a dict (models, optimizer state, RNG states, data-stream position, step, elapsed time,
resolved config, versions). It is written through :mod:`saddlepoint.io` (a temporary file, fsync,
rename), so a crash at any moment leaves either the old or the new file, never a torn one. A file
damaged afterwards (a truncated copy, a full disk) is detected on load; :func:`newest_intact` then
falls back to the newest intact numbered checkpoint. Loading uses ``torch.load(weights_only=True)``:
a crafted pickle that would run code is rejected before anything runs.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import to_dict
from ..errors import CheckpointError, UserError


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and plain containers."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely; any malformed, truncated or unsafe file is a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise CheckpointError(f"checkpoint {path} rejected (not a plain-tensor checkpoint): {first}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError) as exc:
        raise DamagedCheckpoint(f"checkpoint {path} is truncated or not a checkpoint ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != "saddlepoint-checkpoint":
        raise DamagedCheckpoint(f"checkpoint {path} is not a saddlepoint checkpoint")
    return obj


class DamagedCheckpoint(CheckpointError):
    """A checkpoint file that is truncated or not a checkpoint at all (as opposed to one refused as unsafe)."""


@dataclasses.dataclass
class Resumable:
    """The checkpoint a run resumes from: ``state`` loaded from ``path``; ``damaged``: newer files that
    could not be read (``last.pt`` first), to set aside with :func:`set_aside`."""

    state: dict[str, Any]
    path: Path
    damaged: list[Path]


def newest_intact(ckpt_dir: Path) -> Resumable:
    """``ckpt_dir/last.pt``, or, when it is damaged, the newest intact ``step_*.pt`` (read only: nothing is
    moved). An unsafe file is never skipped: it stops here (:class:`CheckpointError`)."""
    last = Path(ckpt_dir) / "last.pt"
    try:
        return Resumable(load_checkpoint(last), last, [])
    except DamagedCheckpoint as exc:
        first_error = exc
    damaged = [last]
    for path in sorted(Path(ckpt_dir).glob("step_*.pt"), reverse=True):
        try:
            return Resumable(load_checkpoint(path), path, damaged)
        except DamagedCheckpoint:
            damaged.append(path)
    raise first_error


def set_aside(damaged: list[Path]) -> list[Path]:
    """Rename each damaged checkpoint to ``NAME.damaged-<n>`` (the first free n) and return the new paths."""
    moved = []
    for path in damaged:
        if not path.exists():
            continue
        n = 1
        while path.with_name(f"{path.name}.damaged-{n}").exists():
            n += 1
        target = path.with_name(f"{path.name}.damaged-{n}")
        os.replace(path, target)
        moved.append(target)
    return moved


def versions() -> dict[str, str]:
    """Package versions recorded in checkpoints and summaries."""
    import sys

    from .. import __version__

    return {"saddlepoint": __version__, "torch": str(torch.__version__), "numpy": np.__version__,
            "python": sys.version.split()[0]}


def capture(trainer: Any) -> dict[str, Any]:
    """Everything a :class:`~saddlepoint.training.loop.Trainer` needs to continue exactly."""
    t = trainer
    return {
        "format": "saddlepoint-checkpoint",
        "versions": versions(),
        "config": to_dict(t.cfg),
        "step": t.step,
        "elapsed": t.elapsed,
        "G": t.G.state_dict(),
        "D": t.D.state_dict(),
        "ema": t.ema.state_dict() if t.ema is not None else None,
        "optimizer": t.opt.state_dict(),
        "penalties": [getattr(p, "state_dict", dict)() for p in t.penalties],
        "rng": rng_state(),
        "data_gen": t.data_gen.get_state(),
        "noise_gen": t.noise_gen.get_state(),
        "augment": t.augment.state_dict() if getattr(t, "augment", None) is not None else None,
        "dataset": t.dataset.state_dict(),
        "fixed_z": t.fixed_z,
        "best": dict(t.best),
    }


def restore(trainer: Any, ckpt: dict[str, Any]) -> None:
    """Load :func:`capture`'s dict into a trainer built from the same config (any world size)."""
    t = trainer
    try:
        t.G.load_state_dict(ckpt["G"])
        t.D.load_state_dict(ckpt["D"])
        if t.ema is not None and ckpt.get("ema") is not None:
            t.ema.load_state_dict(ckpt["ema"])
        t.opt.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        t.world.reseed(t.cfg.seed, int(ckpt["step"]))  # rank 0 carries the saved stream
        t.data_gen.set_state(ckpt["data_gen"])
        t.noise_gen.set_state(ckpt["noise_gen"])
        if getattr(t, "augment", None) is not None and ckpt.get("augment") is not None:
            t.augment.load_state_dict(ckpt["augment"])
        t.dataset.load_state_dict(ckpt["dataset"])
        t.fixed_z = ckpt["fixed_z"]
        t.best = dict(ckpt.get("best") or {})
        t.step = int(ckpt["step"])
        t.elapsed = float(ckpt["elapsed"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"checkpoint does not match this run's models or optimizer: {exc}") from None
