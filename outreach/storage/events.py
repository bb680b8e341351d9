"""Campaign event streams in Redis: one stream per campaign; the entry id is the client's cursor."""
from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from outreach.storage import counters

STREAM_MAXLEN = 100_000


def stream_key(campaign_id) -> str:
    return f"outreach:campaign:{campaign_id}:events"


async def publish(redis: aioredis.Redis, campaign_id, events: list[dict], counts: dict[str, int] | None = None):
    """Append events (and add metric counts) in one round trip; returns the events' ids."""
    if not events and not counts:
        return []
    key = stream_key(campaign_id)
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(key, {"data": orjson.dumps(event)}, maxlen=STREAM_MAXLEN, approximate=True)
        counters.queue_increments(pipe, counts or {})
        replies = await pipe.execute()
    return [decode_id(value) for value in replies[:len(events)]]


async def last_id(redis: aioredis.Redis, campaign_id) -> str:
    entries = await redis.xrevrange(stream_key(campaign_id), count=1)
    return decode_id(entries[0][0]) if entries else "0-0"


async def read_after(redis: aioredis.Redis, keys_and_ids: dict[str, str], block_ms: int, count: int = 1000):
    """XREAD on several campaign streams: [(key, [(id, event), ...]), ...]."""
    reply = await redis.xread(keys_and_ids, block=block_ms, count=count)
    return [(decode_id(key), [(decode_id(entry_id), orjson.loads(fields[b"data"])) for entry_id, fields in entries])
            for key, entries in reply or []]


def decode_id(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def valid_cursor(value: str) -> bool:
    """`<ms>` or `<ms>-<seq>` in ASCII digits, each part within Redis's 64 bits: anything else fails XRANGE."""
    head, dash, tail = value.partition("-")
    parts = (head, tail) if dash else (head,)
    return all(part.isascii() and part.isdigit() and int(part) < 2 ** 64 for part in parts)
