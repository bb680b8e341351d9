"""The Resend rate limit holds across processes: turns are booked on one schedule in Redis, evenly spaced, by one
Redis call at a time per process however many sends wait; a 429's hold reaches every process; without Redis
each process keeps to its share of the rate."""
from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid

import pytest
import redis.asyncio as aioredis

from outreach.providers.resend import RateLimiter
from outreach.storage.rate_limits import SharedRateLimiter, key_for

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class FakeTime:
    """Monotonic time that moves only when someone sleeps, for the per-process fallback."""

    def __init__(self):
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class CountingFallback(RateLimiter):
    def __init__(self, per_second: float, **kwargs):
        super().__init__(per_second, **kwargs)
        self.turns = 0

    async def wait(self, still_wanted=None) -> float:
        self.turns += 1
        return await super().wait(still_wanted)


@pytest.fixture
async def small_redis():
    """A client whose pool holds only two connections: more concurrent Redis calls than that would fail."""
    client = aioredis.from_url(REDIS_URL, max_connections=2)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
def account():
    """A Resend account of this test's own, so that nothing else sharing the Redis database shares its limit."""
    ACCOUNT["key"] = f"re_test_{uuid.uuid4().hex}"


ACCOUNT = {"key": "re_test_key"}


def limiter(redis, per_second: int, **kwargs) -> SharedRateLimiter:
    return SharedRateLimiter(redis, key_for("resend", ACCOUNT["key"]), per_second,
                             fallback=CountingFallback(per_second), **kwargs)


def busiest_second(times: list[float]) -> int:
    """The most turns inside any one-second window (sliding, not only aligned seconds)."""
    ordered, busiest, start = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


async def test_many_waiters_in_two_processes_share_one_evenly_spaced_limit_over_one_connection(small_redis):
    processes = [limiter(small_redis, 200), limiter(small_redis, 200)]  # two API or actor processes
    granted: list[float] = []

    async def turn(index: int) -> None:
        await processes[index % 2].wait()
        granted.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(turn(index) for index in range(500)))  # 500 concurrent sends, 2 connections
    assert len(granted) == 500
    assert busiest_second(granted) <= 220, "more than 10% over the limit in some second"
    assert time.monotonic() - started >= 500 / 200 - 0.6 - 0.1  # the first half second is booked at once
    assert not any(process.degraded or process.fallback.turns for process in processes)
    assert {process.live for process in processes} == {2}


async def test_a_hold_asked_by_the_provider_stops_every_process(small_redis):
    first, second = limiter(small_redis, 50), limiter(small_redis, 50)
    await first.wait()
    held_at = time.monotonic()
    first.hold(0.8)  # a 429 with Retry-After reached the first process
    await asyncio.sleep(0.05)  # let its booker write the hold (nothing else is waiting)
    await second.wait()
    assert time.monotonic() - held_at >= 0.75


async def test_a_waiter_whose_campaign_paused_leaves_the_queue_promptly(small_redis):
    slow = limiter(small_redis, 2)  # one turn every half second: most waiters queue
    wanted = {"yes": True}
    waiters = [asyncio.create_task(slow.wait(lambda: wanted["yes"])) for _ in range(20)]
    await asyncio.sleep(0.2)
    paused_at = time.monotonic()
    wanted["yes"] = False
    turns = await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert time.monotonic() - paused_at < 1.0
    assert sum(turn is None for turn in turns) >= 17, "a waiter that gave up must not be handed a turn"
    assert slow._drop_abandoned() == 0


async def test_without_redis_each_process_keeps_to_its_share_of_the_rate(small_redis):
    clock = FakeTime()
    processes = [limiter(small_redis, 10), limiter(small_redis, 10)]
    processes[0].fallback = CountingFallback(10, clock=clock, sleep=clock.sleep)
    for process in (*processes, processes[0]):  # both register as live; the first sees the second
        await process.wait()
    with socket.socket() as sock:  # Redis gone: a port that refuses every connection
        sock.bind(("127.0.0.1", 0))
        down = aioredis.from_url(f"redis://127.0.0.1:{sock.getsockname()[1]}/0")
        processes[0].redis, processes[0]._script = down, None
        start = clock()
        for _ in range(4):
            await processes[0].wait()
        await down.aclose()
    assert processes[0].degraded and processes[0].fallback.turns == 4
    assert processes[0].fallback.interval == pytest.approx(2 / 10)  # half of 10/s: two processes were live
    assert clock() - start >= 3 * 2 / 10 - 1e-9


def test_a_limiter_kept_across_event_loops_still_grants_turns():
    """A process-wide limiter (cached per account) may outlive the event loop it first ran in."""
    client_urls = REDIS_URL

    async def one_turn(shared: dict) -> float:
        client = aioredis.from_url(client_urls)
        try:
            if "limiter" not in shared:
                shared["limiter"] = limiter(client, 50)
            shared["limiter"].redis, shared["limiter"]._script = client, None
            return await asyncio.wait_for(shared["limiter"].wait(), timeout=5)
        finally:
            await client.aclose()

    shared: dict = {}
    assert asyncio.run(one_turn(shared)) < 1
    assert asyncio.run(one_turn(shared)) < 1
