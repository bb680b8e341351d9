"""Which campaigns a sweeper resumes: active ones whose lease expired, or that never got one although leads wait
on them; each taken by one sweeper only; never one that is paused, finished, or waiting only on later timers."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from outreach.storage import campaigns, db, leases, orgs


@pytest.fixture(autouse=True)
def redis_for_cleanup(redis):
    """The shared clean-up flushes Redis after each test: have it ready before then."""

async def campaign_with_a_lead(pool, status: str, *, due: str = "-infinity", started: str = "1 hour") -> uuid.UUID:
    """A campaign in `status` since `started` ago, with one pending lead due at `due`."""
    async with db.transaction(pool) as conn:
        org_id = await orgs.local_org(conn, f"org {uuid.uuid4().hex[:8]}")
        campaign_id = (await campaigns.create_campaign(conn, org_id, {"name": "c"}))["id"]
        lead_id = await conn.fetchval("INSERT INTO leads (org_id, first_name, email) VALUES ($1, 'L', 'l@example.com') "
                                      "RETURNING id", org_id)
        await conn.execute("INSERT INTO campaign_leads (campaign_id, lead_id, org_id, due_at) "
                           "VALUES ($1, $2, $3, $4::text::timestamptz)", campaign_id, lead_id, org_id, due)
        await conn.execute(f"UPDATE campaigns SET status = $2, updated_at = now() - interval '{started}' "
                           "WHERE id = $1", campaign_id, status)
    return campaign_id


async def sweep(pool, holder: str = "sweeper:a") -> list:
    async with db.transaction(pool) as conn:
        return await leases.claim_expired(conn, holder, 30)


async def test_an_expired_lease_of_an_active_campaign_is_taken_over_once(pool):
    running = await campaign_with_a_lead(pool, "active")
    lapsed = await campaign_with_a_lead(pool, "active")
    async with db.connection(pool) as conn:
        await leases.renew(conn, running, "actor:1", 30)
        await leases.renew(conn, lapsed, "actor:2", 30)
        await conn.execute("UPDATE campaign_leases SET expires_at = now() - interval '1 second' WHERE campaign_id = $1",
                           lapsed)
    assert await sweep(pool) == [lapsed]
    assert await sweep(pool, "sweeper:b") == [], "another sweeper resumed it again"
    assert await pool.fetchval("SELECT holder FROM campaign_leases WHERE campaign_id = $1", lapsed) == "sweeper:a"


async def test_an_active_campaign_that_never_got_a_lease_is_resumed_when_leads_wait_on_it(pool):
    never_began = await campaign_with_a_lead(pool, "active")
    just_started = await campaign_with_a_lead(pool, "active", started="1 second")
    waiting_on_timers = await campaign_with_a_lead(pool, "active", due="2999-01-01")
    resumed = await sweep(pool)
    assert resumed == [never_began]
    assert just_started not in resumed, "its actor may not have renewed yet"
    assert waiting_on_timers not in resumed, "the scheduler wakes it when its leads come due"


async def test_paused_or_finished_campaigns_are_never_resumed_and_their_old_leases_go(pool):
    paused = await campaign_with_a_lead(pool, "paused")
    completed = await campaign_with_a_lead(pool, "completed")
    async with db.connection(pool) as conn:
        for campaign_id in (paused, completed):
            await leases.renew(conn, campaign_id, "actor:1", 30)
        await conn.execute("UPDATE campaign_leases SET expires_at = now() - interval '1 second'")
    assert await sweep(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM campaign_leases") == 0


async def test_a_run_that_ends_releases_its_lease_and_a_failed_one_keeps_it(pool):
    for outcome in ("ends", "fails"):
        campaign_id = await campaign_with_a_lead(pool, "active")
        finish = asyncio.Event()

        async def run():
            await finish.wait()
            if outcome == "fails":
                raise RuntimeError("the run failed without recording it")

        task = asyncio.create_task(run())
        heartbeat = asyncio.create_task(leases.Heartbeat(pool, campaign_id, 30, holder="actor:1").keep(lambda: task))
        async with asyncio.timeout(10):
            while not await pool.fetchval("SELECT count(*) FROM campaign_leases WHERE campaign_id = $1", campaign_id):
                await asyncio.sleep(0.01)
        finish.set()
        await heartbeat
        held = await pool.fetchval("SELECT count(*) FROM campaign_leases WHERE campaign_id = $1", campaign_id)
        assert held == (outcome == "fails"), f"a run that {outcome} must {'keep' if held else 'release'} its lease"
