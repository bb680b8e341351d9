"""Numbers of organizations whose plan lapsed: not answered from the moment it lapses, released at Twilio after
a grace period (OUTREACH_NUMBER_RELEASE_GRACE_DAYS), unless the organization pays again before then.

Durable: the due time is a column (phone_numbers.release_after), so a restart loses nothing. Every API process
sweeps (actors/number_release.py), one number per transaction: the number is locked (FOR UPDATE SKIP LOCKED, so two
processes never release one number together) and re-read as still lapsed under that lock, and the lock is held
through the Twilio call until the row is forgotten. A payment committed before the lock keeps the number (the row no
longer matches); one arriving during the release waits for the lock and then finds the number gone. A failed release
leases the number (release_after moved ahead) to be tried again later; a process that dies mid-release leaves the
lock to be dropped with its connection, and the number to the next sweep.
"""
from __future__ import annotations

import datetime

import asyncpg

from outreach.runtime import policy
from outreach.storage import db

LOCK_DUE = """
SELECT id, org_id, number, provider, provider_sid FROM phone_numbers
WHERE status = 'inactive' AND release_after <= $1
ORDER BY release_after LIMIT 1 FOR UPDATE SKIP LOCKED
"""
FORGET = "DELETE FROM phone_numbers WHERE id = $1 AND status = 'inactive' AND release_after IS NOT NULL"
LEASE = "UPDATE phone_numbers SET release_after = $2 WHERE id = $1"


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
    """The sweeper's store: hands out one due number at a time, locked while it is released."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def release_next(self, now: datetime.datetime, lease_until: datetime.datetime, release) -> bool | None:
        """Lock the most overdue lapsed number and await `release(row)` (the Twilio call) under the lock. True:
        released, its row goes (call logs keep their history without it). False: it failed, and the number
        waits until `lease_until`. None: no number is due."""
        async with db.transaction(self.pool) as conn:
            row = await conn.fetchrow(LOCK_DUE, now)
            if row is None:
                return None
            released = await release(dict(row))
            if released:
                await conn.execute(FORGET, row["id"])
            else:
                await conn.execute(LEASE, row["id"], lease_until)
            return released
