"""Monthly usage per organization, as counted at send time by whoever sends."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors

CURRENT_MONTH = "date_trunc('month', now() AT TIME ZONE 'UTC')::date"


async def current_usage(conn: asyncpg.Connection, org_id) -> dict:
    """This UTC month's counters (zeros before the first send) and the organization's plan."""
    row = await conn.fetchrow(
        f"""SELECT o.plan::text AS plan, coalesce(u.minutes, 0) AS minutes,
                   coalesce(u.telegram, 0) AS telegram, coalesce(u.emails, 0) AS emails
            FROM organizations o
            LEFT JOIN usage u ON u.org_id = $1 AND u.month = {CURRENT_MONTH}
            WHERE o.id = $1""",
        org_id,
    )
    if row is None:
        raise errors.NotFound("Organization not found")
    return dict(row)
