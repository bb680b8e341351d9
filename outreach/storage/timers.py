"""Timers of campaigns that live over time: when each lead's step is due, when each campaign next is.

`campaign_leads.due_at` is when a lead's current step may fire ('-infinity': at once);
`campaigns.next_due_at` is the earliest of them for an active campaign, maintained by runs and read by the
scheduler through one partial index. "Is it due" is always decided with the caller's clock, never `now()`.
"""
from __future__ import annotations

import contextlib
import datetime

import asyncpg

from outreach.storage import db

NOTIFY_CHANNEL = "outreach_due"  # a run or a start that sets an earlier wake-up tells the schedulers
SCHEDULED_WINDOW = datetime.timedelta(minutes=1)
# How far a scheduler (or a start that runs the campaign at once) moves a campaign's wake-up while its run goes
# on: the run writes the real one when it ends; if nobody runs it, a scheduler wakes it again after this.
RUN_LEASE = datetime.timedelta(seconds=60)  # a `scheduled` event counts the leads due this close together


async def notify_due(conn: asyncpg.Connection, when: datetime.datetime) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, when.isoformat())


async def arm_campaign(conn: asyncpg.Connection, campaign_id, starts_at: datetime.datetime,
                       first_due: datetime.datetime | None, rescheduled: bool = False) -> None:
    """A start: leads not yet started begin at `first_due` (None: at once), and the campaign is due at
    `starts_at` (its scheduledAt when in the future, else the start itself). `rescheduled` (a start before a
    future scheduledAt): every lead nothing was tried on yet follows it, also those an earlier start had set
    to another scheduledAt."""
    if first_due is not None:
        await conn.execute(
            """UPDATE campaign_leads cl SET due_at = $2
               WHERE campaign_id = $1 AND state = 'pending' AND step = 0
                 AND (due_at = '-infinity' OR ($3 AND NOT EXISTS (
                     SELECT 1 FROM attempts a WHERE a.campaign_id = $1 AND a.lead_id = cl.lead_id)))""",
            campaign_id, first_due, rescheduled,
        )
    await conn.execute("UPDATE campaigns SET next_due_at = $2 WHERE id = $1", campaign_id, starts_at)
    await notify_due(conn, starts_at)


async def wake_for_new_leads(conn: asyncpg.Connection, campaign_id, first_due: datetime.datetime) -> None:
    """Leads added to an active campaign begin their first step at `first_due` (its delay after now): their
    due time is set, and the campaign wakes then if nothing wakes it sooner."""
    await conn.execute(
        """UPDATE campaign_leads SET due_at = $2
           WHERE campaign_id = $1 AND state = 'pending' AND step = 0 AND due_at = '-infinity'""",
        campaign_id, first_due,
    )
    await conn.execute("UPDATE campaigns SET next_due_at = least(next_due_at, $2) WHERE id = $1", campaign_id,
                       first_due)
    await notify_due(conn, first_due)


async def due_waiting(conn: asyncpg.Connection, campaign_id, now: datetime.datetime) -> int:
    """Pending leads already due that a run left waiting (a plan limit, no account with capacity)."""
    return await conn.fetchval(
        "SELECT count(*) FROM campaign_leads WHERE campaign_id = $1 AND state = 'pending' AND due_at <= $2",
        campaign_id, now,
    )


async def schedule_next(conn: asyncpg.Connection, campaign_id, now: datetime.datetime) -> dict | None:
    """At the end of a run with leads waiting on timers: the campaign's next wake-up, and how many leads come
    due then (within a minute); None (and no wake-up) when no lead waits for a later time."""
    next_due = await conn.fetchval(
        "SELECT min(due_at) FROM campaign_leads WHERE campaign_id = $1 AND state = 'pending' AND due_at > $2",
        campaign_id, now,
    )
    await conn.execute("UPDATE campaigns SET next_due_at = $2 WHERE id = $1 AND status = 'active'",
                       campaign_id, next_due)
    if next_due is None:
        return None
    await notify_due(conn, next_due)
    leads = await conn.fetchval(
        """SELECT count(*) FROM campaign_leads
           WHERE campaign_id = $1 AND state = 'pending' AND due_at >= $2 AND due_at < $3""",
        campaign_id, next_due, next_due + SCHEDULED_WINDOW,
    )
    return {"dueAt": next_due, "leads": leads}


async def clear_next_due(conn: asyncpg.Connection, campaign_id) -> None:
    await conn.execute("UPDATE campaigns SET next_due_at = NULL WHERE id = $1", campaign_id)


async def claim_due_campaigns(conn: asyncpg.Connection, now: datetime.datetime, lease: datetime.timedelta,
                              limit: int = 100) -> list:
    """Active campaigns due by `now`, claimed for this scheduler: their wake-up moves `lease` ahead (a run
    started for them writes the real next one), so another scheduler does not wake them again; SKIP LOCKED
    keeps two schedulers claiming at the same instant apart."""
    rows = await conn.fetch(
        """UPDATE campaigns SET next_due_at = $1::timestamptz + $2::interval
           WHERE id = ANY(ARRAY(
               SELECT id FROM campaigns WHERE status = 'active' AND next_due_at <= $1
               ORDER BY next_due_at LIMIT $3 FOR UPDATE SKIP LOCKED))
           RETURNING id""",
        now, lease, limit,
    )
    return [row["id"] for row in rows]


async def next_wake(conn: asyncpg.Connection) -> datetime.datetime | None:
    return await conn.fetchval(
        "SELECT min(next_due_at) FROM campaigns WHERE status = 'active' AND next_due_at IS NOT NULL")


async def next_lead_due(conn: asyncpg.Connection, campaign_id) -> datetime.datetime | None:
    """When the campaign's earliest waiting lead comes due; None when one is due now or none waits."""
    return await conn.fetchval(
        """SELECT nullif(min(due_at), '-infinity') FROM campaign_leads
           WHERE campaign_id = $1 AND state = 'pending'""", campaign_id)


async def step_stats(conn: asyncpg.Connection, campaign_id, step_count: int) -> list[dict]:
    """Per step: leads it reached (sent), leads it was tried on and did not reach (failed), leads waiting on
    it, and the earliest time one of those comes due (None: now, or nobody waits)."""
    tried = {row["step"]: row for row in await conn.fetch(
        """SELECT a.step, count(*) FILTER (WHERE a.reached)::int AS sent,
                  count(*) FILTER (WHERE NOT a.reached AND NOT (cl.step = a.step
                                   AND cl.state IN ('pending', 'in_progress')))::int AS failed
           FROM (SELECT step, lead_id, bool_or(outcome = 'sent') AS reached FROM attempts
                 WHERE campaign_id = $1 AND outcome IS NOT NULL GROUP BY step, lead_id) a
           JOIN campaign_leads cl ON cl.campaign_id = $1 AND cl.lead_id = a.lead_id
           GROUP BY a.step""", campaign_id)}
    waiting = {row["step"]: row for row in await conn.fetch(
        """SELECT step, count(*)::int AS waiting, nullif(min(due_at) FILTER (WHERE state = 'pending'), '-infinity')
                  AS next_due_at
           FROM campaign_leads WHERE campaign_id = $1 AND state IN ('pending', 'in_progress') GROUP BY step""",
        campaign_id)}
    return [{"step": index, "sent": tried[index]["sent"] if index in tried else 0,
             "failed": tried[index]["failed"] if index in tried else 0,
             "waiting": waiting[index]["waiting"] if index in waiting else 0,
             "nextDueAt": waiting[index]["next_due_at"] if index in waiting else None}
            for index in range(step_count)]


async def stop_lead(conn: asyncpg.Connection, org_id, lead_id, reason: str) -> int:
    """The lead answered: end its remaining steps in every campaign of the organization whose current step
    has stopOnReply (the default). A lead waiting ends now (`sent` if a step reached it, else `skipped`,
    with `reason`); a lead whose step is in flight is marked, and ends when that step is recorded instead of
    going on (storage.runs.RECORD). Row locks make it safe against a concurrent claim. Returns how many
    campaigns' sequences were stopped for the lead."""
    rows = await conn.fetch(
        """UPDATE campaign_leads cl
           SET stopped = $3,
               state = (CASE WHEN cl.state <> 'pending' THEN cl.state::text
                             WHEN cl.reached THEN 'sent' ELSE 'skipped' END)::lead_state,
               error = CASE WHEN cl.state = 'pending' THEN $3 ELSE cl.error END,
               updated_at = now()
           FROM campaigns c
           WHERE c.id = cl.campaign_id AND cl.org_id = $1 AND cl.lead_id = $2
             AND cl.state IN ('pending', 'in_progress')
             AND coalesce((c.settings -> 'sequence' -> cl.step ->> 'stopOnReply')::boolean, true)
           RETURNING cl.campaign_id""",
        org_id, lead_id, reason,
    )
    return len(rows)


class PgTimerStore:
    """The scheduler's TimerStore over PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def claim_due(self, now: datetime.datetime, limit: int) -> list:
        async with db.transaction(self.pool) as conn:
            return await claim_due_campaigns(conn, now, RUN_LEASE, limit)

    async def next_wake(self) -> datetime.datetime | None:
        async with db.connection(self.pool) as conn:
            return await next_wake(conn)

    @contextlib.asynccontextmanager
    async def listening(self, callback):
        """LISTEN on the due channel on one connection of the pool; yields whether that connection is still alive
        (its loss also calls `callback`, so the scheduler notices at once and listens again on another)."""
        lost: list = []

        def on_lost(*_args):
            lost.append(True)
            callback()

        notified = lambda *_args: callback()  # noqa: E731 (asyncpg passes connection, pid, channel, payload)
        async with self.pool.acquire() as conn:
            await conn.add_listener(NOTIFY_CHANNEL, notified)
            conn.add_termination_listener(on_lost)
            try:
                yield lambda: not lost
            finally:
                # a lost connection is already detached from the pool, its listeners gone with it (asyncpg detaches
                # it before it calls `on_lost`: the InterfaceError of that moment is the same loss)
                with contextlib.suppress(asyncpg.InterfaceError):
                    if not lost:
                        conn.remove_termination_listener(on_lost)
                        await conn.remove_listener(NOTIFY_CHANNEL, notified)
