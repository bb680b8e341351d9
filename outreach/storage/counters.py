"""Cumulative counters shared by every process (API replicas, actors on any node), kept in one Redis hash."""
from __future__ import annotations

import redis.asyncio as aioredis

KEY = "outreach:counters"
SEPARATOR = "|"


def name(*parts: str) -> str:
    return SEPARATOR.join(parts)


def queue_increments(pipe, counts: dict[str, int]) -> None:
    """Add the increments to a pipeline the caller executes (batched with its other writes)."""
    for field, amount in counts.items():
        if amount:
            pipe.hincrby(KEY, field, amount)


async def add(redis: aioredis.Redis, counts: dict[str, int]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        queue_increments(pipe, counts)
        await pipe.execute()


async def read_all(redis: aioredis.Redis) -> dict[tuple[str, ...], int]:
    raw = await redis.hgetall(KEY)
    return {tuple(key.decode().split(SEPARATOR)): int(value) for key, value in raw.items()}
