"""Messages: one row per Telegram, email or voice message, in either direction."""
from __future__ import annotations

import asyncpg

from outreach.runtime.models import Channel, Page
from outreach.storage import sql

LIST_COLUMNS = "id, lead_id, direction, content, status, metadata, parent_id, created_at"
FILTER = "org_id = $1 AND channel = $2 AND ($3::uuid IS NULL OR lead_id = $3)"


async def list_messages(conn: asyncpg.Connection, org_id, channel: Channel, page: Page, *, lead_id=None):
    """A page of the org's messages on one channel, newest first, optionally of one lead."""
    rows = await conn.fetch(
        f"SELECT {LIST_COLUMNS} FROM messages WHERE {FILTER} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
        org_id, channel.value, lead_id, page.limit, page.offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM messages WHERE {FILTER}", org_id, channel.value, lead_id)
    return sql.as_dicts(rows), total
