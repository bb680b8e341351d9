"""The RunStore and EventSink ports over PostgreSQL and Redis, for one campaign.

A run outlives database outages: `Reconnecting` wraps a store so that every call that fails because
PostgreSQL cannot be reached (refused, restarting, shutting down, a connection dropped) is tried
again, whole, with capped and jittered backoff until it succeeds. So while the database is gone the
run blocks: no lead is claimed, no attempt row can be written and therefore no send starts, and an
outcome already received waits until it is recorded. Each store call is one statement or transaction.
A call whose COMMIT landed just before the connection dropped is sent again too, so each must be safe to
repeat: recording outcomes is idempotent (runs.RECORD), and leads a repeated claim left `in_progress` are
put back to pending by the run before it ends (CampaignRunner._finish).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import random

import asyncpg
import redis.asyncio as aioredis

from outreach.runtime import backoff
from outreach.storage import campaigns, db, events, runs, timers

log = logging.getLogger(__name__)
# The database is unreachable or restarting: nothing is wrong with the statement itself.
TRANSIENT_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
                    asyncpg.CrashShutdownError, asyncpg.TooManyConnectionsError, asyncpg.ClientCannotConnectError,
                    OSError, asyncio.TimeoutError)
RECONNECT_FIRST_SECONDS = 0.1
RECONNECT_CAP_SECONDS = 5.0


class Reconnecting:
    """A store whose every call is tried again while PostgreSQL is unreachable (see the module docstring)."""

    def __init__(self, store, label: str, sleep=asyncio.sleep, rng: random.Random | None = None):
        self._store = store
        self._label = label  # names the run or actor in the logs
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._reachable = asyncio.Event()
        self._reachable.set()

    def is_reachable(self) -> bool:
        """False from a call that found PostgreSQL unreachable until one succeeds again."""
        return self._reachable.is_set()

    async def wait_reachable(self) -> None:
        await self._reachable.wait()

    def __getattr__(self, name: str):
        method = getattr(self._store, name)
        if not asyncio.iscoroutinefunction(method):
            return method

        @functools.wraps(method)
        async def until_reachable(*args, **kwargs):
            tries = 0
            while True:
                try:
                    result = await method(*args, **kwargs)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    self._reachable.clear()
                    delay = backoff.backoff_delay(tries, self._rng, RECONNECT_FIRST_SECONDS, RECONNECT_CAP_SECONDS)
                    log.warning("%s: PostgreSQL unreachable in %s (%s: %s); trying again in %.1f s",
                                self._label, name, type(exc).__name__, exc, delay)
                    await self._sleep(delay)
                    tries += 1
                else:
                    self._reachable.set()
                    return result

        return until_reachable


def is_transient(exc: BaseException) -> bool:
    """A connection lost with the server. asyncpg also reports it as an interface or internal error ("connection
    is closed"; "another operation is in progress" on a connection whose operation died with the server),
    which otherwise mean a misuse: a run store never shares a connection, so here they mean the server went."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, (asyncpg.InterfaceError, asyncpg.InternalClientError)) and any(
        words in str(exc) for words in ("closed", "another operation"))


class PgRunStore:
    def __init__(self, pool: asyncpg.Pool, campaign_id, plan_limits: dict | None = None):
        self.pool = pool
        self.campaign_id = campaign_id
        self.org_id = None
        self.plan_limits = plan_limits  # Settings.plan_limits; None: the defaults

    async def load_campaign(self) -> dict:
        async with db.connection(self.pool) as conn:
            campaign = await runs.load_campaign(conn, self.campaign_id)
        self.org_id = campaign["org_id"]
        return campaign

    async def campaign_status(self) -> str | None:
        async with db.connection(self.pool) as conn:
            return await runs.campaign_status(conn, self.campaign_id)

    async def reconcile(self) -> int:
        async with db.transaction(self.pool) as conn:
            return await runs.reconcile(conn, self.campaign_id)

    async def claim_leads(self, after, size: int, now) -> list[dict]:
        async with db.transaction(self.pool) as conn:
            return await runs.claim_leads(conn, self.campaign_id, after, size, now)

    async def sent_before(self, lead_id) -> list[dict]:
        async with db.connection(self.pool) as conn:
            return await runs.sent_before(conn, self.campaign_id, lead_id)

    async def due_waiting(self, now) -> int:
        async with db.connection(self.pool) as conn:
            return await timers.due_waiting(conn, self.campaign_id, now)

    async def schedule_next(self, now) -> dict | None:
        async with db.transaction(self.pool) as conn:
            return await timers.schedule_next(conn, self.campaign_id, now)

    async def start_attempts(self, plan: str, jobs: list[tuple]) -> dict:
        async with db.transaction(self.pool) as conn:
            return await runs.start_attempts(conn, self.campaign_id, self.org_id, plan, jobs, self.plan_limits)

    async def record_outcomes(self, batch) -> None:
        async with db.transaction(self.pool) as conn:
            await runs.record_outcomes(conn, self.campaign_id, self.org_id, batch)

    async def release_leads(self, lead_ids: list) -> None:
        async with db.connection(self.pool) as conn:
            await runs.release_leads(conn, self.campaign_id, lead_ids)

    async def finish_campaign(self, status: str, reason: str | None = None) -> bool:
        """`completed` or `paused` (with why, when the run stopped by itself), never over a user's pause."""
        async with db.transaction(self.pool) as conn:
            finished = await runs.finish_campaign(conn, self.campaign_id, status)
            if finished:
                await campaigns.set_status_reason(conn, self.campaign_id, reason)
            return finished

    async def run_counts(self) -> dict:
        async with db.connection(self.pool) as conn:
            return await runs.run_counts(conn, self.campaign_id)


class RedisEventSink:
    def __init__(self, redis: aioredis.Redis, campaign_id):
        self.redis = redis
        self.campaign_id = campaign_id

    async def publish(self, batch: list[dict], counts: dict[str, int] | None = None) -> list[str]:
        return await events.publish(self.redis, self.campaign_id, batch, counts)


class PgAccountStore:
    """What VoiceLine actors read (TelegramAccount actors use storage.telegram_accounts.PgAccountState)."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def campaign_active(self, campaign_id) -> bool:
        async with db.connection(self.pool) as conn:
            return await runs.campaign_status(conn, campaign_id) == "active"
