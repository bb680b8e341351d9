"""Per-organization rate limits on routes that call a paid provider: a token bucket in Redis, shared by every
API process.

A bucket holds up to `per_minute` tokens and gains `per_minute` a minute; each request takes one. Taking is
one Lua call, so concurrent requests on any number of processes never take the same token. The time comes from
the caller's clock (injectable in tests), as seconds.
"""
from __future__ import annotations

import math
import time

from outreach.runtime import errors

TAKE = """
local capacity, rate, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class TokenBucket:
    """`per_minute` requests a minute per key (an organization), in bursts of up to `per_minute`."""

    def __init__(self, redis, name: str, per_minute: int, clock=time.time):
        self.redis = redis
        self.name = name
        self.per_minute = per_minute
        self.clock = clock

    async def take(self, key: str, what: str) -> None:
        """Take a token for `key`, or raise errors.RateLimited (429) with the seconds until one is back."""
        wait = float(await self.redis.eval(TAKE, 1, f"outreach:bucket:{self.name}:{key}", self.per_minute,
                                           self.per_minute / 60, repr(self.clock())))
        if wait > 0:
            raise errors.RateLimited(f"Too many {what} requests: at most {self.per_minute} a minute. Try again later.",
                                     retry_after=max(1, math.ceil(wait)))
