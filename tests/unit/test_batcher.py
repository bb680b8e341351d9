"""The batcher's group commit: with a cap on concurrent flushes, what arrives while they run goes in one next
flush, not in many small ones; and a drain leaves nothing waiting."""
from __future__ import annotations

import asyncio

from outreach.actors.batcher import Batcher


async def settle() -> None:
    """Let every ready callback run (max_delay=0 timers included): steps of the loop, not time."""
    for _ in range(10):
        await asyncio.sleep(0)


class GatedFlush:
    def __init__(self):
        self.batches: list[list] = []
        self.gate = asyncio.Event()

    async def __call__(self, items: list) -> list:
        self.batches.append(list(items))
        await self.gate.wait()
        return [item * 10 for item in items]


async def test_items_arriving_while_the_only_flush_runs_go_together_in_the_next_one():
    flush = GatedFlush()
    batcher = Batcher(flush, max_items=100, max_delay=0, max_concurrent=1)
    first = asyncio.create_task(batcher.submit(1))
    await settle()
    later = [asyncio.create_task(batcher.submit(n)) for n in range(2, 7)]
    await settle()  # their delay is over: they still wait, the one flush allowed is running
    assert flush.batches == [[1]]
    flush.gate.set()
    assert await asyncio.gather(first, *later) == [10, 20, 30, 40, 50, 60]
    assert flush.batches == [[1], [2, 3, 4, 5, 6]]


async def test_a_full_batch_waits_for_a_free_flush_and_batches_stay_within_max_items():
    flush = GatedFlush()
    batcher = Batcher(flush, max_items=2, max_delay=0, max_concurrent=1)
    waiters = [asyncio.create_task(batcher.submit(n)) for n in range(5)]
    await settle()
    assert flush.batches == [[0, 1]]
    flush.gate.set()
    assert await asyncio.gather(*waiters) == [0, 10, 20, 30, 40]
    assert flush.batches == [[0, 1], [2, 3], [4]]


async def test_drain_flushes_what_waits_behind_a_running_flush():
    flush = GatedFlush()
    batcher = Batcher(flush, max_items=100, max_delay=60, max_concurrent=1)
    waiters = [asyncio.create_task(batcher.submit(n)) for n in range(3)]
    await settle()  # submitted; the 60 s delay keeps them waiting until the drain
    assert flush.batches == []
    flush.gate.set()
    await batcher.drain()
    assert all(waiter.done() for waiter in waiters) and flush.batches == [[0, 1, 2]]
