"""The Redis client lifetime."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis


@contextlib.asynccontextmanager
async def redis_ctx(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()
