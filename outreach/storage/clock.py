"""The clock a process runs campaigns by: the system's, or (tests only) one shared through Redis.

A test moves the shared clock for every process at once (the API process, its scheduler and the campaign
actors in Ray's processes), so days of a sequence pass without waiting for them.
"""
from __future__ import annotations

import datetime

import redis.asyncio as aioredis

from outreach.runtime.ports import Clock, SystemClock

KEY = "outreach:test-clock"


class SharedTestClock:
    def __init__(self, redis: aioredis.Redis):
        self.redis = redis

    async def now(self) -> datetime.datetime:
        value = await self.redis.get(KEY)
        if value is None:
            return datetime.datetime.now(datetime.timezone.utc)
        return datetime.datetime.fromisoformat(value.decode())

    async def set(self, when: datetime.datetime) -> None:
        await self.redis.set(KEY, when.astimezone(datetime.timezone.utc).isoformat())


def clock_for(shared_test_clock: bool, redis: aioredis.Redis) -> Clock:
    return SharedTestClock(redis) if shared_test_clock else SystemClock()
