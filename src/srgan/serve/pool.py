"""A bounded worker pool: a fixed number of inference threads behind a fixed-size queue.

Admission is decided at once (never by waiting): when `workers + queue_size` jobs are already
admitted, `run` raises `QueueFull` and the caller answers 503 with `retry_after()` seconds.
`begin_shutdown(seconds)` stops admitting (`ShuttingDown`) and sets the deadline by which the
jobs in flight must be answered (`shutdown_deadline`, awaited with `past_deadline`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
# How often a request waiting for its job looks at the shutdown deadline (seconds).
DEADLINE_POLL_S = 0.1


class QueueFull(Exception):
    """Every worker is busy and the queue is full."""


class ShuttingDown(Exception):
    """The server is stopping: no new jobs are admitted."""


class WorkerPool:
    """Runs blocking jobs on `workers` threads; at most `queue_size` more wait their turn."""

    def __init__(self, workers: int, queue_size: int) -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="srgan-serve")
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._running = 0
        self._mean_seconds = 2.0  # running mean of job durations, seeds Retry-After
        self.completed = 0
        self.dropped = 0  # jobs whose request went away (or timed out) before a worker took them
        self.shutdown_deadline: float | None = None  # time.monotonic() value, once shutdown began

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._admitted - self._running

    @property
    def shutting_down(self) -> bool:
        return self.shutdown_deadline is not None

    def is_full(self) -> bool:
        return self._admitted >= self.capacity

    def retry_after(self) -> int:
        """Seconds until the admitted jobs are likely done (mean job time x jobs / workers), 1 to 120."""
        with self._lock:
            estimate = self._mean_seconds * max(1, self._admitted) / self.workers
        return int(min(120, max(1, math.ceil(estimate))))

    def _release(self, future: Future) -> None:
        with self._lock:
            self._admitted -= 1
            if future.cancelled():
                self.dropped += 1

    def _timed(self, fn: Callable[[], T]) -> T:
        with self._lock:
            self._running += 1
        start = time.perf_counter()
        try:
            return fn()
        finally:
            seconds = time.perf_counter() - start
            with self._lock:
                self._running -= 1
                self.completed += 1
                self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn()` on a worker thread and return its result; raise QueueFull if no room.

        The slot is held until the job ends, even if the awaiting request goes away; a job that
        was still waiting when its request was cancelled is dropped and frees its slot.
        """
        with self._lock:
            if self.shutdown_deadline is not None:
                raise ShuttingDown
            if self._admitted >= self.capacity:
                raise QueueFull
            self._admitted += 1
        try:
            future = self._executor.submit(self._timed, fn)
        except RuntimeError:  # the executor is shut down
            with self._lock:
                self._admitted -= 1
            raise ShuttingDown from None
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def begin_shutdown(self, seconds: float) -> None:
        """Admit no more jobs; the ones in flight have `seconds` to finish (see `past_deadline`)."""
        with self._lock:
            if self.shutdown_deadline is None:
                self.shutdown_deadline = time.monotonic() + seconds
                log.info("shutting down: %d job(s) running, %d waiting, %.0f s to finish",
                         self._running, self.waiting, seconds)

    async def past_deadline(self) -> None:
        """Return once the shutdown deadline has passed; until shutdown begins, wait (polling)."""
        while self.shutdown_deadline is None or time.monotonic() < self.shutdown_deadline:
            left = DEADLINE_POLL_S if self.shutdown_deadline is None else self.shutdown_deadline - time.monotonic()
            await asyncio.sleep(min(DEADLINE_POLL_S, max(0.0, left)))

    def shutdown(self) -> None:
        """Drop waiting jobs; running ones finish in their threads."""
        with self._lock:
            if self.shutdown_deadline is None:
                self.shutdown_deadline = time.monotonic()
        self._executor.shutdown(wait=False, cancel_futures=True)
