"""Webhook events already handled, by provider and event id: a provider's retry is acknowledged, not re-applied."""
from __future__ import annotations

import asyncpg


async def record_event(conn: asyncpg.Connection, provider: str, event_id: str) -> bool:
    """True the first time (provider, event_id) is seen. Call it in the transaction that applies the event,
    so an event whose handling failed is not remembered and the provider's retry applies it."""
    inserted = await conn.fetchval(
        "INSERT INTO webhook_events (provider, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        provider, event_id,
    )
    return bool(inserted)
