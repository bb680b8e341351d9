"""Plan limits for sends outside campaigns (usage.reserve / release / check_available) and for campaign
batches (runs.reserve_usage), read from the configured table, counted atomically in PostgreSQL."""
from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from outreach.runtime import errors, policy
from outreach.runtime.models import Plan, PlanLimits
from outreach.storage import db, runs, usage
from tests.factories import insert_usage

TABLE = {**policy.DEFAULT_PLAN_LIMITS, Plan.STARTER: PlanLimits(minutes=3, telegram=2, emails=5)}


@pytest.fixture
async def org(pool, redis):  # redis too: the autouse clean-up flushes it after every test that uses the pool
    return await pool.fetchval("INSERT INTO organizations (name, kind, plan) VALUES ('acme', 'local', 'starter') "
                               "RETURNING id")


async def counters(pool, org_id) -> tuple:
    row = await pool.fetchrow("SELECT minutes, telegram, emails FROM usage WHERE org_id = $1 AND month = $2",
                              org_id, runs.month_start())
    return tuple(row) if row else (0, 0, 0)


async def reserve(pool, org_id, channel: str, count: int = 1, table=TABLE):
    async with db.transaction(pool) as conn:
        return await usage.reserve(conn, org_id, table, channel, count)


async def test_concurrent_reservations_never_overshoot(pool, org):
    results = await asyncio.gather(*(reserve(pool, org, "email") for _ in range(20)), return_exceptions=True)
    granted = [result for result in results if isinstance(result, dict)]
    refused = [result for result in results if isinstance(result, errors.RateLimited)]
    assert len(granted) == 5 and len(refused) == 15
    assert sorted(result["used"] for result in granted) == [1, 2, 3, 4, 5]
    assert await counters(pool, org) == (0, 0, 5)


async def test_the_refusal_says_which_limit_and_when_it_resets(pool, org):
    await reserve(pool, org, "telegram", 2)
    with pytest.raises(errors.RateLimited) as caught:
        await reserve(pool, org, "telegram")
    error = caught.value
    assert error.message.startswith("Telegram message limit reached (2/2) on the starter plan")
    assert error.details == {"channel": "telegram", "plan": "starter", "used": 2, "limit": 2}
    assert 0 < error.retry_after <= 31 * 86400
    with pytest.raises(errors.RateLimited):  # all or nothing: 6 never fit in 5
        await reserve(pool, org, "email", 6)
    assert await counters(pool, org) == (0, 2, 0)


async def test_release_gives_back_what_was_not_sent(pool, org):
    reserved = await reserve(pool, org, "email", 5)
    async with db.connection(pool) as conn:
        await usage.release(conn, org, "email", 2, reserved["month"])
        await usage.release(conn, org, "email", 10)  # never below zero
    assert await counters(pool, org) == (0, 0, 0)
    assert (await reserve(pool, org, "email", 5))["used"] == 5


async def test_the_configured_table_decides_not_the_defaults(pool, org):
    assert (await reserve(pool, org, "email", 100, table=None))["limit"] == 500  # defaults: starter 500
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", org)
    assert (await reserve(pool, org, "email", 10_000, table=TABLE))["limit"] == policy.UNLIMITED
    await pool.execute("UPDATE organizations SET plan = 'free' WHERE id = $1", org)
    with pytest.raises(errors.RateLimited, match=r"Email limit reached \(10100/0\)"):
        await reserve(pool, org, "email", table=TABLE)
    trial = {**TABLE, Plan.FREE: PlanLimits(minutes=0, telegram=0, emails=10101)}
    assert (await reserve(pool, org, "email", table=trial))["used"] == 10101


async def test_voice_needs_minutes_left(pool, org):
    async with db.connection(pool) as conn:
        await usage.check_available(conn, org, TABLE, "voice")
        await insert_usage(pool, org, runs.month_start(), minutes=3)
        with pytest.raises(errors.RateLimited, match=r"Voice minutes limit reached \(3/3\)"):
            await usage.check_available(conn, org, TABLE, "voice")
        await pool.execute("UPDATE organizations SET plan = 'free' WHERE id = $1", org)
        with pytest.raises(errors.RateLimited, match=r"\(3/0\) on the free plan"):
            await usage.check_available(conn, org, TABLE, "voice")
        with pytest.raises(errors.NotFound):
            await usage.check_available(conn, uuid.uuid4(), TABLE, "voice")


async def test_bad_calls_are_programming_errors(pool, org):
    async with db.connection(pool) as conn:
        for channel, count in (("voice", 1), ("sms", 1), ("email", 0)):
            with pytest.raises(ValueError):
                await usage.reserve(conn, org, TABLE, channel, count)


async def test_campaign_batches_read_the_configured_table(pool, org):
    lead_ids = [uuid.uuid4() for _ in range(4)]
    async with db.transaction(pool) as conn:
        refused, message = await runs.reserve_usage(conn, org, "starter", "telegram", lead_ids, TABLE)
    assert refused == lead_ids[2:] and message == "Telegram message limit reached (2/2)"
    async with db.transaction(pool) as conn:
        refused, message = await runs.reserve_usage(conn, org, "starter", "email", lead_ids)
    assert refused == [] and message is None  # no table: the defaults (500)
    assert await counters(pool, org) == (0, 2, 4)


async def test_billing_usage_shows_the_configured_limits(make_tenant, settings, pool, redis):
    from aiohttp.test_utils import TestClient, TestServer

    from outreach.http.app import Deps, build_app
    from tests.conftest import Api

    api = await make_tenant("acme")
    configured = dataclasses.replace(settings, plan_limits=policy.parse_plan_limits(
        '{"free": {"minutes": 5, "telegram": 10, "emails": 20}, "growth": {"emails": "unlimited"}}'))
    client = TestClient(TestServer(build_app(configured, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    try:
        mine = Api(client, api.token, api.org_id)
        body = (await mine.get("/api/dashboard/billing/usage")).body
        assert body["limits"] == {"minutes": 5, "telegram": 10, "emails": 20}
        await pool.execute("UPDATE organizations SET plan = 'growth' WHERE id = $1", api.org_id)
        body = (await mine.get("/api/dashboard/billing/usage")).body
        assert body["limits"] == {"minutes": 2000, "telegram": 500, "emails": policy.WIRE_UNLIMITED}
    finally:
        await client.close()
