"""Call logs: written by the voice agent and the call webhooks, read by the dashboard."""
from __future__ import annotations

import asyncpg

from outreach.runtime.models import Page
from outreach.storage import sql

LIST_COLUMNS = "id, direction, status, from_number, to_number, duration, started_at, summary, sentiment"
# The full row as the dashboard sees it; provider_call_id stays internal.
COLUMNS = (
    "id, org_id, lead_id, campaign_id, phone_number_id, direction, status, from_number, to_number, duration,"
    " started_at, ended_at, transcription, transcript, summary, sentiment, sentiment_score, score,"
    " recording_url, metadata"
)


async def list_calls(conn: asyncpg.Connection, org_id, page: Page):
    rows = await conn.fetch(
        f"""SELECT {LIST_COLUMNS} FROM call_logs WHERE org_id = $1
            ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3""",
        org_id, page.limit, page.offset,
    )
    total = await conn.fetchval("SELECT count(*) FROM call_logs WHERE org_id = $1", org_id)
    return sql.as_dicts(rows), total


async def get_call(conn: asyncpg.Connection, org_id, call_id) -> dict:
    return await sql.fetch_owned(conn, "call_logs", COLUMNS, call_id, org_id)
