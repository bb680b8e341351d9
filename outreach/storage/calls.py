"""Call logs: opened by the voice lines, ended by the call webhooks, read by the dashboard."""
from __future__ import annotations

import asyncpg

from outreach.runtime.models import Page
from outreach.storage import db, runs, sql

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


# --- calls in progress: written before dialing, ended by Twilio's status callback ---------------------

STATE_COLUMNS = "id, org_id, provider_call_id, status::text AS status, duration, from_number"
END_KEY_SECONDS = 3600


async def open_campaign_call(conn: asyncpg.Connection, number_id, campaign_id, lead_id, to_number: str) -> dict | None:
    """The call log of a campaign call from one of the org's numbers, written before dialing.

    `created` is False when the campaign already has an outbound call log for this lead: the line is
    running the same call again (its actor restarted), which must not dial twice. None when the
    number no longer exists or belongs to another organization than the campaign.
    """
    row = await conn.fetchrow(
        f"""WITH line AS (
                SELECT n.id, n.org_id, n.number FROM phone_numbers n
                JOIN campaigns c ON c.id = $2 AND c.org_id = n.org_id WHERE n.id = $1
            ), existing AS (
                SELECT {prefixed(STATE_COLUMNS, 'cl')}, false AS created
                FROM call_logs cl JOIN line ON cl.org_id = line.org_id
                WHERE cl.campaign_id = $2 AND cl.lead_id = $3 AND cl.direction = 'outbound' LIMIT 1
            ), inserted AS (
                INSERT INTO call_logs (org_id, lead_id, campaign_id, phone_number_id, direction, status, from_number,
                                       to_number)
                SELECT line.org_id, l.id, $2, line.id, 'outbound', 'in_progress', line.number, $4
                FROM line LEFT JOIN leads l ON l.id = $3 AND l.org_id = line.org_id
                WHERE NOT EXISTS (SELECT 1 FROM existing)
                RETURNING {STATE_COLUMNS}, true AS created
            )
            SELECT * FROM existing UNION ALL SELECT * FROM inserted""",
        number_id, campaign_id, lead_id, to_number,
    )
    return dict(row) if row else None


def prefixed(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


async def attach_call_sid(conn: asyncpg.Connection, org_id, call_id, sid: str) -> None:
    await conn.execute(
        "UPDATE call_logs SET provider_call_id = $3 WHERE id = $1 AND org_id = $2 AND provider_call_id IS NULL",
        call_id, org_id, sid,
    )


async def discard_call(conn: asyncpg.Connection, org_id, call_id) -> None:
    """Drop the log of a call that was never dialed; the campaign run records the attempt itself."""
    await conn.execute(
        "DELETE FROM call_logs WHERE id = $1 AND org_id = $2 AND provider_call_id IS NULL", call_id, org_id
    )


async def call_state(conn: asyncpg.Connection, org_id, call_id) -> dict | None:
    row = await conn.fetchrow(f"SELECT {STATE_COLUMNS} FROM call_logs WHERE id = $1 AND org_id = $2", call_id, org_id)
    return dict(row) if row else None


async def end_call(conn: asyncpg.Connection, org_id, call_id, sid: str, status: str, duration: int | None,
                   answered_by: str | None) -> dict | None:
    """Move a call in progress to its end state, once; the call is named by our id when the callback
    carries it (outbound calls), else by its Call SID. None when there is no such call in progress."""
    match = "id = $2" if call_id is not None else "$2::uuid IS NULL AND provider_call_id = $3"
    row = await conn.fetchrow(
        f"""UPDATE call_logs SET status = $4::call_status, duration = $5, ended_at = now(),
                                 provider_call_id = coalesce(provider_call_id, $3),
                                 metadata = CASE WHEN $6::text IS NULL THEN metadata
                                                 ELSE metadata || jsonb_build_object('answeredBy', $6::text) END
            WHERE org_id = $1 AND {match} AND status = 'in_progress'
              AND (provider_call_id IS NULL OR provider_call_id = $3)
            RETURNING id, direction::text AS direction, duration""",
        org_id, call_id, sid, status, duration, answered_by,
    )
    return dict(row) if row else None


async def count_minutes(conn: asyncpg.Connection, org_id, seconds: int) -> None:
    """Add a call's minutes (each started minute) to this month's usage."""
    minutes = -(-seconds // 60)
    if minutes <= 0:
        return
    await conn.execute(
        """INSERT INTO usage (org_id, month, minutes) VALUES ($1, $2, $3)
           ON CONFLICT (org_id, month) DO UPDATE SET minutes = usage.minutes + EXCLUDED.minutes""",
        org_id, runs.month_start(), minutes,
    )


async def open_inbound_call(conn: asyncpg.Connection, org_id, to_number: str, sid: str,
                            from_number: str | None) -> dict | None:
    """The log of a call coming in on one of the org's numbers, once per Call SID (Twilio may ask twice);
    with the org's lead that has the caller's number, if any. None when the org has no such number."""
    row = await conn.fetchrow(
        """INSERT INTO call_logs (org_id, lead_id, phone_number_id, direction, status, from_number, to_number,
                                  provider_call_id)
           SELECT n.org_id,
                  (SELECT l.id FROM leads l WHERE l.org_id = n.org_id AND l.phone = $4
                   ORDER BY l.created_at DESC, l.id LIMIT 1),
                  n.id, 'inbound', 'in_progress', $4, n.number, $3
           FROM phone_numbers n WHERE n.org_id = $1 AND n.number = $2
           ON CONFLICT (provider_call_id) DO UPDATE SET provider_call_id = EXCLUDED.provider_call_id
               WHERE call_logs.org_id = EXCLUDED.org_id
           RETURNING id, org_id, lead_id""",
        org_id, to_number, sid, from_number,
    )
    return dict(row) if row else None


async def store_agent_report(conn: asyncpg.Connection, org_id, call_id, fields: dict) -> dict:
    """What the voice agent reported at the end of a call (transcript, summary, sentiment, score,
    recording); only the fields given change."""
    return await sql.update_owned(conn, "call_logs", "id", call_id, org_id, fields)


def end_key(sid: str) -> str:
    return f"voice:call-end:{sid}"


async def ring_call_end(redis, sid: str) -> None:
    """Wake the line waiting for this call, on whichever machine it runs; the key outlives a late waiter."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(end_key(sid), b"1")
        pipe.expire(end_key(sid), END_KEY_SECONDS)
        await pipe.execute()


async def wait_call_end(redis, sid: str, timeout: float) -> bool:
    """Block until the call's end is rung or `timeout` seconds pass; True when rung."""
    return await redis.blpop([end_key(sid)], timeout=max(timeout, 0.01)) is not None


class CallLogStore:
    """What a VoiceLine reads and writes about its calls: PostgreSQL holds the truth, Redis the wake-ups."""

    def __init__(self, pool: asyncpg.Pool, redis):
        self.pool = pool
        self.redis = redis

    async def open_call(self, number_id, call) -> dict | None:
        async with db.connection(self.pool) as conn:
            return await open_campaign_call(conn, number_id, call.campaign_id, call.lead_id, call.to)

    async def attach_sid(self, opened: dict, sid: str) -> None:
        async with db.connection(self.pool) as conn:
            await attach_call_sid(conn, opened["org_id"], opened["id"], sid)

    async def discard(self, opened: dict) -> None:
        async with db.connection(self.pool) as conn:
            await discard_call(conn, opened["org_id"], opened["id"])

    async def state(self, opened: dict) -> dict | None:
        async with db.connection(self.pool) as conn:
            return await call_state(conn, opened["org_id"], opened["id"])

    async def wait_for_end(self, sid: str, timeout: float) -> bool:
        return await wait_call_end(self.redis, sid, timeout)
