"""Numbers of organizations whose plan lapsed: not answered from the moment it lapses, released at Twilio after
a grace period (OUTREACH_NUMBER_RELEASE_GRACE_DAYS), unless the organization pays again before then.

Durable: the due time is a column (phone_numbers.release_after), so a restart loses nothing. Every API process
sweeps (actors/number_release.py): due numbers are claimed with SKIP LOCKED and a lease (release_after moved
ahead), so two processes never release one number together, and one that dies mid-release leaves the number to
be retried once the lease has passed.
"""
from __future__ import annotations

import datetime

import asyncpg

from outreach.runtime import policy
from outreach.storage import db

CLAIM = """
UPDATE phone_numbers SET release_after = $2
WHERE id = ANY(ARRAY(SELECT id FROM phone_numbers WHERE status = 'inactive' AND release_after <= $1
                     ORDER BY release_after LIMIT $3 FOR UPDATE SKIP LOCKED))
RETURNING id, org_id, number, provider, provider_sid
"""


async def follow_plan(conn: asyncpg.Connection, org_id, plan: str, grace_days: int) -> None:
    """Call when a billing event changed the org's plan. A plan nobody pays for stops the org's numbers at once
    and schedules their release (an earlier date stands); a paid plan brings back numbers waiting for release."""
    if plan in policy.PAID_PLANS:
        await conn.execute("""UPDATE phone_numbers SET status = 'active', release_after = NULL
                              WHERE org_id = $1 AND release_after IS NOT NULL""", org_id)
        return
    await conn.execute(
        """UPDATE phone_numbers SET status = 'inactive',
                  release_after = coalesce(release_after, now() + make_interval(days => $2))
           WHERE org_id = $1 AND status <> 'pending'""", org_id, grace_days)


class PgNumberReleases:
    """The sweeper's store: claims due numbers, forgets released ones."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def claim_due(self, now: datetime.datetime, lease_until: datetime.datetime, limit: int) -> list[dict]:
        async with db.transaction(self.pool) as conn:
            return [dict(row) for row in await conn.fetch(CLAIM, now, lease_until, limit)]

    async def forget(self, number_id) -> None:
        """The number is released at Twilio: its row goes (call logs keep their history without it), unless the
        organization paid again meanwhile."""
        async with db.connection(self.pool) as conn:
            await conn.execute("DELETE FROM phone_numbers WHERE id = $1 AND status = 'inactive' "
                               "AND release_after IS NOT NULL", number_id)
