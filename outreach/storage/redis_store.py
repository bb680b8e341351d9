"""The Redis client lifetime."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis


def open_redis(url: str) -> aioredis.Redis:
    return aioredis.from_url(url, decode_responses=False)


@contextlib.asynccontextmanager
async def redis_ctx(url: str) -> AsyncIterator[aioredis.Redis]:
    client = open_redis(url)
    try:
        yield client
    finally:
        await client.aclose()
