"""The Resend rate limit holds across processes: it is counted in Redis, per account and wall-clock second."""
from __future__ import annotations

import asyncio
import collections

from outreach.providers.resend import RateLimiter
from outreach.storage.rate_limits import SharedRateLimiter, key_for


class Clock:
    """Wall-clock time that moves only when someone sleeps, so the test needs no real waiting."""

    def __init__(self):
        self.now = 1_000_000.25

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class RecordingLimiter(SharedRateLimiter):
    """Notes the second each granted turn was counted in."""

    granted: list[int] = []

    async def _take(self, second: int) -> int:
        taken = await super()._take(second)
        if taken <= self.per_second:
            self.granted.append(second)
        return taken


async def test_two_processes_share_one_limit(redis):
    key = key_for("resend", "re_test_key")
    RecordingLimiter.granted = []
    limiters = [RecordingLimiter(redis, key, 30, fallback=RateLimiter(30)) for _ in range(2)]  # two actors
    await asyncio.gather(*(limiters[index % 2].wait() for index in range(70)))
    per_second = collections.Counter(RecordingLimiter.granted)
    assert sum(per_second.values()) == 70
    assert max(per_second.values()) <= 30 and len(per_second) >= 3


async def test_without_redis_the_process_limit_still_applies():
    class DownRedis:
        def pipeline(self, transaction=True):
            raise ConnectionError("Redis is down")

    clock = Clock()
    fallback = RateLimiter(2, clock=clock, sleep=clock.sleep)
    limiter = SharedRateLimiter(DownRedis(), "k", 2, fallback=fallback, clock=clock, sleep=clock.sleep)
    start = clock()
    for _ in range(4):
        await limiter.wait()
    assert clock() - start >= 1.5  # four turns at two a second
