"""Side work of the loop that is not training: schedules, the progress display and the stop signal."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from .records import PLAYERS


def every(n: int, *, last: int | None = None, before: int | None = None) -> Callable[[int], bool]:
    """A schedule: steps divisible by ``n`` (never when ``n`` is 0), below ``before``; plus step ``last``."""
    return lambda s: bool(n and s % n == 0 and (before is None or s < before)) or s == last


class Progress:
    """A tqdm bar with live losses on a terminal; a few plain lines otherwise (short CI logs); nothing
    when not ``enabled`` (ranks other than 0)."""

    def __init__(self, cfg: Config, start: int, enabled: bool = True) -> None:
        mode = cfg.log.progress if enabled else "none"
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode = mode
        self.total = cfg.train.steps
        self.every = max(1, cfg.train.steps // 10)
        self.t0 = time.perf_counter()
        self.start = start
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=start, dynamic_ncols=True, unit="step")

    def update(self, step: int, losses: list[float]) -> None:
        text = " ".join(f"{n}={v:.3f}" for n, v in zip(PLAYERS, losses))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(text, refresh=False)
        elif self.mode == "lines" and (step % self.every == 0 or step == self.total):
            rate = (step - self.start) / max(1e-9, time.perf_counter() - self.t0)
            eta = (self.total - step) / max(rate, 1e-9)
            print(f"step {step}/{self.total}  {text}  {rate:.1f} step/s  eta {eta:.0f}s", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class StopSignal:
    """SIGINT/SIGTERM turned into a flag the loop reads after each step (handlers in the main thread only)."""

    def __init__(self) -> None:
        self.signalled = False
        self.previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        self.signalled = True

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old)
