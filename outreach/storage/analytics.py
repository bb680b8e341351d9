"""Aggregates behind the analytics dashboard: a few org-scoped queries read in one snapshot."""
from __future__ import annotations

import asyncpg

from outreach.storage import sql

RECENT_LIMIT = 10
CAMPAIGNS_CONSIDERED = 10
TOP_CAMPAIGNS = 5
CHART_DAYS = 7

# Enum columns are cast to text on output; ordering names the column itself, so it follows the enum's order.
CALLS_BY_STATUS = """
SELECT status::text AS status, count(*)::int AS count, coalesce(avg(duration), 0)::int AS avg_duration
FROM call_logs WHERE org_id = $1 GROUP BY call_logs.status ORDER BY call_logs.status
"""

MESSAGES_BY_STATUS = """
SELECT channel::text AS channel, status::text AS status, count(*)::int AS count
FROM messages WHERE org_id = $1 AND channel IN ('telegram', 'email')
GROUP BY messages.channel, messages.status ORDER BY messages.channel, messages.status
"""

ACTIVITY_CHART = f"""
WITH bounds AS (
    SELECT (now() AT TIME ZONE 'UTC')::date AS today,
           ((now() AT TIME ZONE 'UTC')::date - {CHART_DAYS - 1})::timestamp AT TIME ZONE 'UTC' AS since
), days AS (
    SELECT today - back AS day FROM bounds, generate_series({CHART_DAYS - 1}, 0, -1) AS back
), calls AS (
    SELECT (started_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS voice
    FROM call_logs WHERE org_id = $1 AND started_at >= (SELECT since FROM bounds) GROUP BY 1
), sent AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE channel = 'telegram')::int AS telegram,
           count(*) FILTER (WHERE channel = 'email')::int AS email
    FROM messages WHERE org_id = $1 AND created_at >= (SELECT since FROM bounds) GROUP BY 1
)
SELECT days.day, coalesce(calls.voice, 0) AS voice, coalesce(sent.telegram, 0) AS telegram,
       coalesce(sent.email, 0) AS email
FROM days LEFT JOIN calls USING (day) LEFT JOIN sent USING (day)
ORDER BY days.day
"""

# A lead counts once per campaign however many calls and messages reached it, failed ones included;
# it responded when it replied to a message or completed a call. So responses <= contacts.
TOP_CAMPAIGNS_QUERY = f"""
WITH recent AS (
    SELECT id, name, channels, status, created_at FROM campaigns WHERE org_id = $1
    ORDER BY created_at DESC, id DESC LIMIT {CAMPAIGNS_CONSIDERED}
), touches AS (
    SELECT campaign_id, lead_id, status = 'completed' AS responded FROM call_logs
    WHERE org_id = $1 AND lead_id IS NOT NULL AND campaign_id IN (SELECT id FROM recent)
    UNION ALL
    SELECT campaign_id, lead_id, status = 'replied' FROM messages
    WHERE org_id = $1 AND campaign_id IN (SELECT id FROM recent)
), reach AS (
    SELECT campaign_id, count(DISTINCT lead_id)::int AS contacts_reached,
           count(DISTINCT lead_id) FILTER (WHERE responded)::int AS responses
    FROM touches GROUP BY campaign_id
)
SELECT recent.id, recent.name, recent.channels, recent.status::text AS status,
       coalesce(reach.contacts_reached, 0) AS contacts_reached, coalesce(reach.responses, 0) AS responses
FROM recent LEFT JOIN reach ON reach.campaign_id = recent.id
ORDER BY contacts_reached DESC, recent.created_at DESC, recent.id DESC
LIMIT {TOP_CAMPAIGNS}
"""

LEADS_BY_STATUS = """
SELECT status::text AS status, count(*)::int AS count
FROM leads WHERE org_id = $1 GROUP BY leads.status ORDER BY leads.status
"""

RECENT_ACTIVITY = f"""
(SELECT 'call' AS kind, id, 'voice' AS channel, status::text AS status, direction::text AS direction,
        to_number, started_at AS time, lead_id
 FROM call_logs WHERE org_id = $1 ORDER BY started_at DESC, id DESC LIMIT {RECENT_LIMIT})
UNION ALL
(SELECT 'message', id, channel::text, status::text, direction::text, NULL, created_at, lead_id
 FROM messages WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT {RECENT_LIMIT})
ORDER BY time DESC, id DESC LIMIT {RECENT_LIMIT}
"""

LEAD_NAMES = """
SELECT id, first_name, last_name, phone FROM leads WHERE org_id = $1 AND id = ANY($2::uuid[])
"""


async def read_analytics(conn: asyncpg.Connection, org_id) -> dict:
    """Every aggregate from the same snapshot, so the numbers agree with each other."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        parts = {
            "calls_by_status": await fetch_dicts(conn, CALLS_BY_STATUS, org_id),
            "messages_by_status": await fetch_dicts(conn, MESSAGES_BY_STATUS, org_id),
            "activity_chart": await fetch_dicts(conn, ACTIVITY_CHART, org_id),
            "top_campaigns": await fetch_dicts(conn, TOP_CAMPAIGNS_QUERY, org_id),
            "leads_by_status": await fetch_dicts(conn, LEADS_BY_STATUS, org_id),
            "recent_activity": await fetch_dicts(conn, RECENT_ACTIVITY, org_id),
        }
        parts["leads"] = await lead_names(conn, org_id, parts["recent_activity"])
    return parts


async def lead_names(conn: asyncpg.Connection, org_id, activity: list[dict]) -> dict:
    """Name and phone of the leads named in the activity, by id; only leads of the org are found."""
    lead_ids = list({item["lead_id"] for item in activity if item["lead_id"] is not None})
    if not lead_ids:
        return {}
    rows = await conn.fetch(LEAD_NAMES, org_id, lead_ids)
    return {row["id"]: dict(row) for row in rows}


async def fetch_dicts(conn: asyncpg.Connection, query: str, *args) -> list[dict]:
    return sql.as_dicts(await conn.fetch(query, *args))
