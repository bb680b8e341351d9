"""A rate limit shared by every process (API replicas, campaign actors on any node), kept in Redis.

Turns are booked on one schedule in Redis (GCRA: the next free instant, `1/per_second` apart, on
Redis's own clock), so requests are spaced evenly across processes: no second gets more than its
share, not even at the edge between two seconds. In each process the senders that wait queue
locally and one Redis call at a time books turns for a batch of them, so however many sends wait,
a limiter uses one Redis connection (1,000 concurrent sends used to exhaust the pool and each fell
back to a limit of its own). Turns are booked at most `horizon` seconds ahead, so a send whose
campaign is paused gives its turn back within that time.

Each limiter registers itself in Redis with an expiry; when Redis cannot be reached, the process
falls back to a limit of its own at `per_second` divided by the processes it last saw alive.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import math
import time
import uuid

log = logging.getLogger(__name__)
LOCAL = "local"  # a turn to take from the per-process fallback (Redis unreachable)
POLL_SECONDS = 0.1  # how often a queued waiter asks whether its send is still wanted
# A turn used this late would crowd the next second (a busy process woke up late): it is booked again instead.
# At most rate x MAX_LATE_SECONDS extra requests can fall in any second: 5%.
MAX_LATE_SECONDS = 0.05
REDIS_TIMEOUT_SECONDS = 1.0  # a Redis that does not answer counts as unreachable

# KEYS[1] the schedule (next free instant, microseconds on Redis's clock), KEYS[2] live limiters (member -> expiry)
# ARGV: interval_us, wanted, horizon_us, member, member ttl_us, hold_us
BOOK = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local next_free = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now, now + tonumber(ARGV[6]))
local room = math.floor((now + tonumber(ARGV[3]) - next_free) / interval) + 1
local granted = math.max(0, math.min(tonumber(ARGV[2]), room))
local last = next_free + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', last), 'PX', math.floor((last - now) / 1000) + 60000)
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[5])), ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[2], math.floor(tonumber(ARGV[5]) / 1000))
return {granted, next_free - now, redis.call('ZCARD', KEYS[2])}
"""


class SharedRateLimiter:
    """At most `per_second` turns a second, evenly spaced, across all processes using `key`.

    `fallback`: a limiter of this process only (with `set_rate`), used while Redis is unreachable.
    """

    def __init__(self, redis, key: str, per_second: int, fallback, clock=time.monotonic, sleep=asyncio.sleep,
                 horizon: float = 0.5, member_ttl: float = 30.0):
        self.redis = redis
        self.key = key
        self.per_second = per_second
        self.fallback = fallback
        self.clock = clock
        self.sleep = sleep
        self.interval = 1 / per_second
        self.horizon = horizon
        self.member = uuid.uuid4().hex
        self.member_ttl = member_ttl
        self.live = 1  # limiters sharing the key, as last seen in Redis
        self.degraded = False
        self._queue: collections.deque[asyncio.Future] = collections.deque()
        self._booker: asyncio.Task | None = None
        self._script = None
        self._hold_until = 0.0
        self._hold_written = 0.0  # the hold the last booking wrote to Redis

    async def wait(self, still_wanted=None) -> float | None:
        """Returns once this caller's turn has come (the seconds waited), or None as soon as `still_wanted()`
        is false: no turn, the caller sends nothing."""
        started = self.clock()
        while True:
            turn = asyncio.get_running_loop().create_future()
            self._queue.append(turn)
            self._start_booking()
            if not await self._until_done(turn, still_wanted):
                return None
            at = turn.result()
            if at == LOCAL:
                return None if await self.fallback.wait(still_wanted) is None else self.clock() - started
            if at > self.clock():
                await self.sleep(at - self.clock())  # at most `horizon`
            if self.clock() - at <= MAX_LATE_SECONDS:
                return self.clock() - started

    def hold(self, seconds: float) -> None:
        """The provider asked every sender of the account to wait (a 429 with Retry-After): no turn is
        granted for `seconds`, to any process (the next booking writes the hold to Redis)."""
        self._hold_until = max(self._hold_until, self.clock() + seconds)
        self.fallback.hold(seconds)
        self._start_booking()

    async def _until_done(self, turn: asyncio.Future, still_wanted) -> bool:
        """False when the caller stopped wanting its turn before it was booked."""
        while True:
            await asyncio.wait({turn}, timeout=POLL_SECONDS)
            if turn.done():
                return True
            if still_wanted is not None and not still_wanted():
                turn.cancel()  # the booker skips it
                return False

    def _start_booking(self) -> None:
        loop = asyncio.get_running_loop()
        if self._booker is not None and self._booker.get_loop() is not loop:  # reused in another event loop
            self._booker, self._queue = None, collections.deque(turn for turn in self._queue
                                                                if turn.get_loop() is loop)
        if self._booker is None or self._booker.done():
            self._booker = loop.create_task(self._book_waiters())

    async def _book_waiters(self) -> None:
        """One Redis call at a time books turns for the waiters at the front of the queue (and writes a hold)."""
        while self._drop_abandoned() or self._hold_until > self._hold_written:
            wanted = min(len(self._queue), math.ceil(self.horizon * self.per_second) + 1)
            try:
                granted, first_at = await self._book(wanted)
            except Exception:
                self._fall_back()
                self._hold_written = self._hold_until  # held by the fallback meanwhile
                self._hand_out([LOCAL] * wanted)
                continue
            self._hand_out([first_at + index * self.interval for index in range(granted)])
            if 0 < wanted and granted < wanted:  # the horizon is booked: come back when part of it has passed
                await self.sleep(max(self.interval, self.horizon / 4))

    def _drop_abandoned(self) -> int:
        while self._queue and self._queue[0].done():
            self._queue.popleft()
        if any(turn.done() for turn in self._queue):
            self._queue = collections.deque(turn for turn in self._queue if not turn.done())
        return len(self._queue)

    def _hand_out(self, turns: list) -> None:
        for at in turns:
            while self._queue and self._queue[0].done():
                self._queue.popleft()
            if not self._queue:
                return
            self._queue.popleft().set_result(at)

    async def _book(self, wanted: int) -> tuple[int, float]:
        """(turns granted, local monotonic time of the first); refreshes the count of live limiters."""
        if self._script is None:
            self._script = self.redis.register_script(BOOK)
        self._hold_written = self._hold_until
        hold = max(0.0, self._hold_until - self.clock())
        args = [round(self.interval * 1e6), wanted, round(self.horizon * 1e6), self.member,
                round(self.member_ttl * 1e6), round(hold * 1e6)]
        async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
            granted, offset_us, live = await self._script(keys=[self.key, f"{self.key}:live"], args=args)
        received = self.clock()
        self._recovered(int(live))
        return int(granted), received + int(offset_us) / 1e6

    def _recovered(self, live: int) -> None:
        if self.degraded:
            log.info("shared rate limit %s reachable again", self.key)
        self.degraded = False
        self.live = max(1, live)

    def _fall_back(self) -> None:
        if not self.degraded:
            log.warning("shared rate limit %s unavailable; limiting this process to %.2f/s (%d live)",
                        self.key, self.per_second / self.live, self.live, exc_info=True)
        self.degraded = True
        self.fallback.set_rate(self.per_second / self.live)


def key_for(provider: str, api_key: str) -> str:
    """One limit per provider account; the account's key is hashed, never stored."""
    return f"outreach:rate:{provider}:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}"
