"""Bounded concurrency, transport-free: ``workers`` run at once, ``queue`` more may wait.

A call is admitted when it starts (before its input is received), so at most
``workers + queue`` inputs are ever buffered: memory is bounded by
``(workers + queue) * max_request_bytes``. Beyond that :meth:`Admission.admit` raises
:class:`~service.errors.ResourceExhaustedError` at once (RESOURCE_EXHAUSTED: retry later).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from service.errors import CancelledError, ResourceExhaustedError
from service.rpc.metrics import Metrics

#: How often a waiting call re-checks its cancel event (s).
POLL_S = 0.05


class Admission:
    """Admission control for Translate calls."""

    def __init__(self, *, workers: int, queue: int, metrics: Metrics | None = None) -> None:
        self.workers = workers
        self.queue = queue
        self._metrics = metrics
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._slots = threading.Semaphore(workers)

    @property
    def admitted(self) -> int:
        with self._lock:
            return self._admitted

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def _publish(self) -> None:
        if self._metrics is not None:
            self._metrics.in_flight.set(self._running)
            self._metrics.queue_depth.set(self._admitted - self._running)

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of the ``workers + queue`` places for the whole call, or refuse at once."""
        with self._lock:
            if self._admitted >= self.workers + self.queue:
                raise ResourceExhaustedError(
                    f"the server is busy: {self._admitted} calls are admitted, the limit is "
                    f"{self.workers} running + {self.queue} queued: retry later with backoff."
                )
            self._admitted += 1
            self._publish()
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1
                self._publish()

    @contextmanager
    def worker(self, cancel: threading.Event) -> Iterator[None]:
        """Wait (in the queue) for a worker slot; raises CancelledError if ``cancel`` is set meanwhile."""
        while not self._slots.acquire(timeout=POLL_S):
            if cancel.is_set():
                raise CancelledError("the call was cancelled while queued: nothing was computed.")
        with self._lock:
            self._running += 1
            self._publish()
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._publish()
            self._slots.release()
