"""Atomic file writes: a temporary file in the same directory, flushed and fsynced, then ``os.replace``.

A reader (another process, a resumed run, a crash) sees either the old file or the new one, never a torn
one. The directory entry is fsynced too where the platform allows it. Failures raise
:class:`~saddlepoint.errors.UserError` naming the file (exit code 2), and leave no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import UserError

__all__ = ["atomic_torch_save", "atomic_write", "atomic_write_bytes", "atomic_write_text"]


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not every platform/file system allows it
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], what: str = "file") -> Iterator[IO[bytes]]:
    """``with atomic_write(path) as fh: fh.write(...)``: ``path`` is replaced only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically."""
    with atomic_write(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` by ``text`` atomically (UTF-8, newlines written as given)."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_torch_save(obj: Any, path: str | os.PathLike[str], save: Callable[[Any, IO[bytes]], None] | None = None
                      ) -> None:
    """``torch.save(obj)`` to ``path`` atomically (errors: "cannot write checkpoint PATH: ...").

    torch is imported only when called, so this module stays light."""
    if save is None:
        import torch

        save = torch.save
    with atomic_write(path, "checkpoint") as fh:
        save(obj, fh)
