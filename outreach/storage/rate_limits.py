"""A rate limit shared by every process (API replicas, campaign actors on any node), counted in Redis."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time

log = logging.getLogger(__name__)


class SharedRateLimiter:
    """At most `per_second` turns in each wall-clock second, across all processes using `key`.

    If Redis cannot be reached, `fallback` (a limiter of this process only) keeps sends spaced.
    """

    def __init__(self, redis, key: str, per_second: int, fallback, clock=time.time, sleep=asyncio.sleep):
        self.redis = redis
        self.key = key
        self.per_second = per_second
        self.fallback = fallback
        self.clock = clock
        self.sleep = sleep

    async def wait(self) -> float:
        waited = 0.0
        while True:
            now = self.clock()
            try:
                taken = await self._take(int(now))
            except Exception:  # Redis down: still limited, per process
                log.warning("shared rate limit %s unavailable; limiting this process only", self.key, exc_info=True)
                return waited + await self.fallback.wait()
            if taken <= self.per_second:
                return waited
            pause = int(now) + 1 - now
            waited += pause
            await self.sleep(pause)

    async def _take(self, second: int) -> int:
        bucket = f"{self.key}:{second}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(bucket)
            pipe.expire(bucket, 5)
            taken, _ = await pipe.execute()
        return taken


def key_for(provider: str, api_key: str) -> str:
    """One limit per provider account; the account's key is hashed, never stored."""
    return f"outreach:rate:{provider}:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}"
