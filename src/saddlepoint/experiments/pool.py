"""A pool of K worker processes on :class:`concurrent.futures.ProcessPoolExecutor`, one task per worker at a time.

Each worker is a single-process executor (a *slot*) with a spawned process, so a worker that dies outright
(killed, out of memory, ``os._exit``) breaks only its own executor: its task is reported with the process's
exit code, the slot is replaced, and the other workers' runs go on (one shared executor would terminate
every worker when one dies). The executors' processes are tracked through their ``mp_context`` so that an
interrupt can be forwarded to the busy ones (:meth:`WorkerPool.interrupt`), which checkpoint and return.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from ..errors import UserError

__all__ = ["WorkerPool"]


class TrackingContext(SpawnContext):
    """The spawn context, remembering the processes it starts (the executor's only handle on its workers)."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[SpawnProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> SpawnProcess:  # noqa: N802 (the context API's name)
        process = SpawnProcess(*args, **kwargs)
        self.started.append(process)
        return process


class Slot:
    """One worker: a one-process executor, the task it runs and whether its process came up."""

    def __init__(self, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
        self.context = TrackingContext()
        self.executor = ProcessPoolExecutor(1, mp_context=self.context, initializer=initializer, initargs=initargs)
        self.task: Any = None
        self.future: Future | None = None
        self.ready = False
        self.ping: Future = self.executor.submit(os.getpid)  # starts the process and its initializer

    @property
    def process(self) -> SpawnProcess | None:
        return self.context.started[-1] if self.context.started else None

    def exit_code(self, timeout: float = 5.0) -> int | None:
        """The dead worker's exit code (negative: killed by that signal), once the process is reaped."""
        process = self.process
        if process is None:
            return None
        deadline = time.monotonic() + timeout
        while process.exitcode is None and time.monotonic() < deadline:
            process.join(timeout=0.1)
        return process.exitcode

    def close(self, *, force: bool = False) -> None:
        process = self.process
        if force and process is not None and process.is_alive():
            process.terminate()
        self.executor.shutdown(wait=not force, cancel_futures=True)


class WorkerPool:
    """``size`` workers; each runs ``initializer(*initargs)`` once, then tasks one at a time.

    :meth:`run` calls ``fn(task)`` in a worker for every task and reports ``on_done(task, result)`` or, for a
    worker that died while running it, ``on_died(task, exit_code)``. A worker that dies before it could
    start is not the task's fault: the task is retried, and a second such failure is a :class:`UserError`.
    """

    def __init__(self, size: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
                 ) -> None:
        self.size, self.initializer, self.initargs = size, initializer, initargs
        self.slots: list[Slot] = []
        self.start_failures = 0

    def _slot(self) -> Slot:
        slot = next((s for s in self.slots if s.task is None), None)
        if slot is None:
            slot = Slot(self.initializer, self.initargs)
            self.slots.append(slot)
        return slot

    def _replace(self, slot: Slot) -> None:
        slot.close(force=True)
        self.slots.remove(slot)

    def _started(self, slot: Slot) -> bool:
        """Whether the slot's process came up (a start-up failure is counted, and may end the pool)."""
        if slot.ready:
            return True
        try:
            slot.ping.result()
            slot.ready = True
            return True
        except BrokenProcessPool:
            self.start_failures += 1
            if self.start_failures >= 2:
                raise UserError(
                    f"sweep: worker processes exit at start-up (exit code {slot.exit_code()}; see the messages "
                    "above); from a script, call sweep() under 'if __name__ == \"__main__\":'") from None
            return False

    def _settle(self, slot: Slot, on_done: Callable[[Any, Any], None], on_died: Callable[[Any, int | None], None],
                retry: Callable[[Any], None]) -> None:
        """The slot's task finished (result or dead worker): report it and free or replace the slot."""
        task, future = slot.task, slot.future
        slot.task = slot.future = None
        try:
            result = future.result() if future is not None else None
        except BrokenProcessPool:
            started = self._started(slot)
            code = slot.exit_code()
            self._replace(slot)
            if started:
                on_died(task, code)
            else:
                retry(task)
            return
        slot.ready = True
        on_done(task, result)

    def run(self, fn: Callable[[Any], Any], tasks: Iterable[Any], on_done: Callable[[Any, Any], None],
            on_died: Callable[[Any, int | None], None]) -> None:
        pending = deque(tasks)
        while pending or any(s.task is not None for s in self.slots):
            while pending and (len(self.slots) < self.size or any(s.task is None for s in self.slots)):
                slot = self._slot()
                slot.task = pending.popleft()
                try:
                    slot.future = slot.executor.submit(fn, slot.task)
                except BrokenProcessPool:  # died while idle: retry on a fresh worker
                    pending.appendleft(slot.task)
                    self._replace(slot)
            busy = {s.future: s for s in self.slots if s.future is not None}
            done, _ = wait(busy, return_when=FIRST_COMPLETED)
            for future in done:
                self._settle(busy[future], on_done, on_died, pending.appendleft)

    def interrupt(self) -> None:
        """Forward SIGINT to the busy workers (a training run saves a checkpoint and returns)."""
        for slot in self.slots:
            process = slot.process
            if slot.task is not None and process is not None and process.is_alive():
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGINT)

    def drain(self, on_done: Callable[[Any, Any], None], timeout: float = 60.0) -> None:
        """After an interrupt: report what the busy workers return within ``timeout`` seconds."""
        busy = {s.future: s for s in self.slots if s.future is not None}
        done, _ = wait(busy, timeout=timeout)
        for future in done:
            slot = busy[future]
            with contextlib.suppress(BrokenProcessPool):
                on_done(slot.task, future.result())
            slot.task = slot.future = None

    def close(self) -> None:
        """Stop every worker (idle ones cleanly, any still busy by force)."""
        for slot in self.slots:
            slot.close(force=slot.task is not None)
        self.slots.clear()
