"""Micro-batching: questions that arrive while the encoder is busy are answered in one batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from .answer import Answer, clean_question

log = logging.getLogger(__name__)


class MicroBatcher:
    """Answers questions off the event loop; concurrent questions share one encoder call.

    `answer_many` is called in `executor` (a worker thread by default) with up to `max_batch`
    cleaned questions. Bad input raises QuestionError at once, before anything is queued.
    Up to `max_concurrent` batches run at once, so one slow batch does not hold up the
    questions that arrive after it (a new batch starts only when questions are waiting).
    """

    def __init__(
        self,
        answer_many: Callable[[Sequence[str]], list[Answer]],
        max_batch: int = 256,
        executor: Executor | None = None,
        max_concurrent: int = 2,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        self._answer_many = answer_many
        self._max_batch = max_batch
        self._max_concurrent = max_concurrent
        self._executor = executor
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[Answer]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many encoder calls were made (for stats and benchmarks)

    async def answer(self, question: str) -> Answer:
        """The answer to one question, batched with whatever else is waiting."""
        cleaned = clean_question(question)
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(), name="micro-batcher")
        future: asyncio.Future[Answer] = loop.create_future()
        await self._queue.put((cleaned, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self._max_concurrent)
        while True:
            await slots.acquire()
            try:
                batch = [await queue.get()]
            except BaseException:
                slots.release()
                raise
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            live = [(q, f) for q, f in batch if not f.cancelled()]
            if not live:
                slots.release()
                continue
            self.batches += 1
            task = loop.create_task(self._answer_batch(live), name="micro-batch")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _answer_batch(self, live: list[tuple[str, asyncio.Future[Answer]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            answers = await loop.run_in_executor(self._executor, self._answer_many, [q for q, _ in live])
        except asyncio.CancelledError:  # close(): the waiting callers are cancelled too
            for _, future in live:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller, not swallowed
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(live, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    async def close(self) -> None:
        """Stop the worker; questions still queued or being answered get CancelledError."""
        for task in list(self._running):
            task.cancel()
        for task in list(self._running):
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._running.clear()
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        if self._queue is not None:
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                future.cancel()
