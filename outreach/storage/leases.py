"""Campaign leases: proof that somebody is running an active campaign.

The campaign actor renews its campaign's lease while a run lives and releases it when the run ends
(completed, paused, or waiting on timers). A run that dies without recording its end (its process
killed, its failure unwritable) leaves the lease to expire, and any API process's sweeper resumes
the campaign. Expiry is judged by PostgreSQL's clock, the one all processes share.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket

import asyncpg

from outreach.storage import db

log = logging.getLogger(__name__)


async def renew(conn: asyncpg.Connection, campaign_id, holder: str, seconds: float) -> None:
    """Hold the lease for `seconds` more (a campaign deleted meanwhile has nothing to hold)."""
    await conn.execute(
        """INSERT INTO campaign_leases (campaign_id, holder, expires_at)
           SELECT id, $2, now() + make_interval(secs => $3) FROM campaigns WHERE id = $1
           ON CONFLICT (campaign_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at""",
        campaign_id, holder, seconds,
    )


async def release(conn: asyncpg.Connection, campaign_id) -> None:
    await conn.execute("DELETE FROM campaign_leases WHERE campaign_id = $1", campaign_id)


async def claim_expired(conn: asyncpg.Connection, holder: str, seconds: float, limit: int = 100) -> list:
    """Active campaigns nobody runs, taken over by `holder` for `seconds` (the resumed run renews the lease),
    so that two sweepers do not resume one campaign twice: those whose lease expired, and those that never
    got one although leads wait on them (started, but the run never began). Leases left by campaigns that
    are no longer active are dropped."""
    await conn.execute(
        """DELETE FROM campaign_leases l USING campaigns c
           WHERE c.id = l.campaign_id AND c.status <> 'active' AND l.expires_at < now()""")
    return await claim_lapsed(conn, holder, seconds, limit) + await claim_unheld(conn, holder, seconds, limit)


async def claim_lapsed(conn: asyncpg.Connection, holder: str, seconds: float, limit: int) -> list:
    rows = await conn.fetch(
        """UPDATE campaign_leases SET holder = $1, expires_at = now() + make_interval(secs => $2)
           WHERE campaign_id = ANY(ARRAY(
               SELECT l.campaign_id FROM campaign_leases l JOIN campaigns c ON c.id = l.campaign_id
               WHERE c.status = 'active' AND l.expires_at < now()
               ORDER BY l.expires_at LIMIT $3 FOR UPDATE OF l SKIP LOCKED))
           RETURNING campaign_id""",
        holder, seconds, limit,
    )
    return [row["campaign_id"] for row in rows]


async def claim_unheld(conn: asyncpg.Connection, holder: str, seconds: float, limit: int) -> list:
    """Active for longer than a lease, no lease, and leads in progress or due for longer than a lease (the
    scheduler wakes a campaign whose timers come due; this is for the one nobody woke)."""
    rows = await conn.fetch(
        """INSERT INTO campaign_leases (campaign_id, holder, expires_at)
           SELECT c.id, $1, now() + make_interval(secs => $2) FROM campaigns c
           WHERE c.status = 'active' AND c.updated_at < now() - make_interval(secs => $2)
             AND NOT EXISTS (SELECT 1 FROM campaign_leases l WHERE l.campaign_id = c.id)
             AND EXISTS (SELECT 1 FROM campaign_leads cl WHERE cl.campaign_id = c.id
                         AND (cl.state = 'in_progress'
                              OR cl.state = 'pending' AND cl.due_at <= now() - make_interval(secs => $2)))
           LIMIT $3
           ON CONFLICT (campaign_id) DO NOTHING
           RETURNING campaign_id""",
        holder, seconds, limit,
    )
    return [row["campaign_id"] for row in rows]


class Heartbeat:
    """Holds a campaign's lease while its run lives: renewed every third of its length, released when the
    run ends on its own terms. A run that failed keeps it, so that it expires and a sweeper resumes it."""

    def __init__(self, pool: asyncpg.Pool, campaign_id, seconds: float, holder: str | None = None):
        self.pool = pool
        self.campaign_id = campaign_id
        self.seconds = seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"

    async def keep(self, current_run) -> None:
        """`current_run()`: the run's task (a `start` after a `pause` may replace it while this runs)."""
        while not (run := current_run()).done():
            await self._try(renew, self.holder, self.seconds)
            await asyncio.wait({run}, timeout=self.seconds / 3)
        if not run.cancelled() and run.exception() is None:
            await self._try(release)

    async def _try(self, query, *args) -> None:
        """Best effort: a database outage stops the renewals, and the sweeper resumes the campaign (its
        run attaches to this one if it still lives)."""
        try:
            async with db.connection(self.pool) as conn:
                await query(conn, self.campaign_id, *args)
        except Exception as exc:
            log.warning("campaign %s: lease %s failed: %r", self.campaign_id, query.__name__, exc)
