"""Coalesce concurrent single-item requests into batched calls: one round trip for many leads."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence


class Batcher:
    """`await submit(item)` returns that item's result once a flush containing it has run.

    A flush runs when `max_items` are waiting or `max_delay` seconds after the first one arrived, so a quiet run
    gets low latency. With `max_concurrent`, no more flushes than that run at once: what arrives meanwhile waits
    and goes in the next one when a flush ends (group commit), so a busy run gets large batches, not many small
    statements each paying its planning and its commit.
    """

    def __init__(self, flush: Callable[[list], Awaitable[Sequence]], max_items: int = 500, max_delay: float = 0.005,
                 max_concurrent: int | None = None):
        self.flush = flush
        self.max_items = max_items
        self.max_delay = max_delay
        self.max_concurrent = max_concurrent
        self._waiting: list[tuple[object, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task] = set()

    async def submit(self, item):
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._waiting) >= self.max_items:
            self._start_flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._start_flush)
        return await future

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting and (self.max_concurrent is None or len(self._running) < self.max_concurrent):
            batch, self._waiting = self._waiting[:self.max_items], self._waiting[self.max_items:]
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._flush_ended)

    def _flush_ended(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        if self._waiting:  # what waited for a free flush goes now
            self._start_flush()

    async def _run(self, batch: list[tuple[object, asyncio.Future]]) -> None:
        try:
            results = await self.flush([item for item, _ in batch])
        except BaseException as exc:  # every waiter learns of the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)

    async def drain(self) -> None:
        while self._waiting or self._running:
            self._start_flush()
            await asyncio.gather(*list(self._running), return_exceptions=True)


class InFlight:
    """Counts writes in progress, so a pause can wait for the ones already started while new ones are refused
    (by the caller's flag) and any number run side by side otherwise."""

    def __init__(self):
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self):
        self._count += 1
        self._idle.clear()
        return self

    def __exit__(self, *_exc):
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()
