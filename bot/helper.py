"""A helper thread: runs one function for a caller that meanwhile does something else."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Pending(Generic[T]):
    """The result of a job handed to a HelperThread; `result()` waits for it."""

    def __init__(self) -> None:
        self._reply: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()

    def done(self) -> bool:
        """Whether the job has finished (its result is waiting)."""
        return not self._reply.empty()

    def result(self) -> T:
        """The function's return value, or its exception raised here."""
        ok, value = self._reply.get()
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]


class HelperThread:
    """One daemon thread that runs the jobs handed to it, in order.

    `Answerer` hands it the questions' word scoring right before encoding them. Handing a job
    over this way costs less than `concurrent.futures.ThreadPoolExecutor.submit` (no Future,
    work item or pool bookkeeping). The thread starts with the first job and ends with the
    process.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Pending]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, job: Callable[[], T]) -> Pending[T]:
        """Run `job()` in the helper thread; the caller gets its result from the Pending."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()
        pending: Pending[T] = Pending()
        self._jobs.put((job, pending))
        return pending

    def _run(self) -> None:
        while True:
            job, pending = self._jobs.get()
            try:
                pending._reply.put((True, job()))
            except BaseException as exc:  # noqa: BLE001 - not swallowed: raised again in the caller
                pending._reply.put((False, exc))
