"""The RunStore and EventSink ports over PostgreSQL and Redis, for one campaign."""
from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from outreach.storage import db, events, runs


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

    async def claim_leads(self, after, size: int) -> list[dict]:
        async with db.transaction(self.pool) as conn:
            return await runs.claim_leads(conn, self.campaign_id, after, size)

    async def start_attempts(self, plan: str, jobs: list[tuple]) -> dict:
        async with db.transaction(self.pool) as conn:
            return await runs.start_attempts(conn, self.campaign_id, self.org_id, plan, jobs, self.plan_limits)

    async def record_outcomes(self, batch) -> None:
        async with db.transaction(self.pool) as conn:
            await runs.record_outcomes(conn, self.campaign_id, self.org_id, batch)

    async def release_leads(self, lead_ids: list) -> None:
        async with db.connection(self.pool) as conn:
            await runs.release_leads(conn, self.campaign_id, lead_ids)

    async def finish_campaign(self, status: str) -> bool:
        async with db.connection(self.pool) as conn:
            return await runs.finish_campaign(conn, self.campaign_id, status)

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

