"""The scheduler: how late due steps fire, and what it costs while timers wait.

Run: python bench/scheduler.py [--quick]

1. Idle: 1,000,000 future timers (1,000 active campaigns of 1,000 pending leads, due in a day) and none
   due. The scheduler runs for IDLE_SECONDS in this process (before Ray is started, so nothing else runs
   here); we report the CPU this process used and how many times it looked at the database.
2. Lateness: 100,000 leads of one campaign whose next step (an email, sandbox provider, 20 ms latency)
   comes due spread over one minute. The product path runs it: the scheduler claims the campaign when its
   first lead is due, submits its run to the campaign actor on a local Ray, and the runner claims leads as
   they come due. Lateness is the attempt row's time (written right before the send) minus the step's due
   time, both PostgreSQL's clock; p50/p99/max over every lead.

Uses a throwaway database (outreach_bench_scheduler) and Redis database 2.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import time

import asyncpg
import redis.asyncio as aioredis

from outreach.actors import remote
from outreach.actors.scheduler import Scheduler
from outreach.runtime.config import Settings
from outreach.runtime.ports import SystemClock
from outreach.storage import db, migrate, timers

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_URL = "postgresql://postgres@127.0.0.1:5432/outreach_bench_scheduler"
REDIS_URL = "redis://127.0.0.1:6379/2"
IDLE_SECONDS = 60
SETTINGS = {"templates": {"email": {"subject": "Hi {{firstName}}", "body": "Hello {{firstName}}."}},
            "sandbox": {"latencyMs": 20, "outcomes": {"email": {"sent": 1}}},
            "sequence": [{"channel": "email"}, {"channel": "email", "delay": {"minutes": 1}}]}


async def reset_database() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute("DROP DATABASE IF EXISTS outreach_bench_scheduler WITH (FORCE)")
    await admin.execute("CREATE DATABASE outreach_bench_scheduler")
    await admin.close()
    await migrate.migrate(BENCH_URL)


async def add_leads(conn, org_id, count: int, tag: str) -> None:
    await conn.execute(
        """INSERT INTO leads (org_id, first_name, email) SELECT $1, 'Lead' || g, $3 || g || '@example.com'
           FROM generate_series(1, $2) AS g""", org_id, count, tag)


async def add_campaign(conn, org_id, name: str) -> object:
    return await conn.fetchval(
        """INSERT INTO campaigns (org_id, name, status, channels, channel_priority, settings)
           VALUES ($1, $2, 'active', '["email"]', '["email"]', $3) RETURNING id""", org_id, name, SETTINGS)


async def load_future_timers(conn, org_id, campaigns: int, leads_each: int) -> None:
    """`campaigns` x `leads_each` pending steps due in a day: the same leads in every campaign (a lead may be in
    several campaigns' sequences), so a million timers load in seconds."""
    await add_leads(conn, org_id, leads_each, "idle")
    lead_ids = [row["id"] for row in await conn.fetch("SELECT id FROM leads WHERE org_id = $1", org_id)]
    for index in range(campaigns):
        campaign_id = await add_campaign(conn, org_id, f"idle {index}")
        await conn.execute(
            """INSERT INTO campaign_leads (campaign_id, lead_id, org_id, step, due_at, reached)
               SELECT $1, unnest($2::uuid[]), $3, 1, now() + interval '1 day' + random() * interval '1 hour', true""",
            campaign_id, lead_ids, org_id)
        await conn.execute("UPDATE campaigns SET next_due_at = now() + interval '1 day' WHERE id = $1", campaign_id)
    await conn.execute("ANALYZE campaign_leads; ANALYZE campaigns")


class CountingStore(timers.PgTimerStore):
    def __init__(self, pool):
        super().__init__(pool)
        self.claims = self.wakes = 0

    async def claim_due(self, now, limit):
        self.claims += 1
        return await super().claim_due(now, limit)

    async def next_wake(self):
        self.wakes += 1
        return await super().next_wake()


async def measure_idle(pool, seconds: float) -> dict:
    store = CountingStore(pool)
    submitted = []

    async def submit(campaign_id):
        submitted.append(campaign_id)
        return asyncio.sleep(0)

    scheduler = Scheduler(store, submit, SystemClock())
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(seconds)  # a benchmark measures over wall time; nothing waits on it
    task.cancel()
    after, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": elapsed, "cpu_seconds": cpu, "claims": store.claims, "lookups": store.wakes,
            "woken": len(submitted)}


async def load_due_later(conn, org_id, count: int) -> object:
    """One campaign whose `count` leads are at their second step, due spread over one minute a day from now
    (loading takes a while: `bring_due` moves them to the coming minute once everything is ready)."""
    campaign_id = await add_campaign(conn, org_id, "due soon")
    await add_leads(conn, org_id, count, "due")
    await conn.execute(
        """INSERT INTO campaign_leads (campaign_id, lead_id, org_id, step, due_at, reached)
           SELECT $1, id, $2, 1, now() + interval '1 day' + random() * interval '1 minute', true
           FROM leads WHERE org_id = $2 AND email LIKE 'due%'""", campaign_id, org_id)
    await conn.execute("UPDATE leads SET campaign_id = $1 WHERE org_id = $2 AND email LIKE 'due%'", campaign_id, org_id)
    await conn.execute("ANALYZE leads; ANALYZE campaign_leads")
    return campaign_id


async def bring_due(pool, campaign_id, starts_in: float) -> None:
    """Shift the campaign's timers so the first comes due `starts_in` seconds after this call began."""
    starts_at = await pool.fetchval("SELECT clock_timestamp() + make_interval(secs => $1)", starts_in)
    async with db.transaction(pool) as conn:
        await conn.execute(
            """UPDATE campaign_leads SET due_at = $2::timestamptz + (due_at - (SELECT min(due_at) FROM campaign_leads
                                                                  WHERE campaign_id = $1))
               WHERE campaign_id = $1""", campaign_id, starts_at)
        await conn.execute("UPDATE campaigns SET next_due_at = $2 WHERE id = $1", campaign_id, starts_at)
        await timers.notify_due(conn, starts_at)
    late = await pool.fetchval("SELECT clock_timestamp() > $1", starts_at)
    assert not late, "moving the timers took longer than their head start: raise starts_in"


async def measure_lateness(pool, settings: Settings, count: int) -> dict:
    async with db.transaction(pool) as conn:
        org_id = await conn.fetchval("INSERT INTO organizations (name, kind, plan) VALUES ('due', 'local', "
                                     "'enterprise') RETURNING id")
        campaign_id = await load_due_later(conn, org_id, count)
    await remote.campaign_actor(campaign_id, settings).ping.remote()  # its process is up before the first lead
    runtime = remote.RayRuntime(settings)
    scheduler = Scheduler(timers.PgTimerStore(pool), runtime.submit, SystemClock())
    task = asyncio.create_task(scheduler.run())
    await bring_due(pool, campaign_id, starts_in=45)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(1500):
            while await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1 AND outcome IS NOT NULL",
                                      campaign_id) < count:
                await asyncio.sleep(1)  # polling progress for the report; the system under test does not poll
    finally:
        task.cancel()
    row = await pool.fetchrow(
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY late) AS p50,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY late) AS p99, max(late) AS worst, count(*) AS n
           FROM (SELECT extract(epoch FROM a.started_at - cl.due_at) AS late FROM attempts a
                 JOIN campaign_leads cl ON cl.campaign_id = a.campaign_id AND cl.lead_id = a.lead_id
                 WHERE a.campaign_id = $1 AND a.step = 1) t""", campaign_id)
    duplicates = await pool.fetchval("SELECT count(*) - count(DISTINCT lead_id) FROM attempts WHERE campaign_id = $1",
                                     campaign_id)
    return {"leads": row["n"], "p50": row["p50"], "p99": row["p99"], "max": row["worst"], "woken": scheduler.woken,
            "duplicates": duplicates, "wall": time.perf_counter() - started}


async def main(quick: bool, parts: str) -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    await reset_database()
    campaigns, leads_each, due_count = (100, 1_000, 10_000) if quick else (1_000, 1_000, 100_000)
    temp_dir = f"/tmp/ray-outreach-bench-scheduler-{os.getpid()}"
    redis = aioredis.from_url(REDIS_URL)
    try:
        async with db.pool_ctx(BENCH_URL, min_size=2, max_size=8) as pool:
            if parts in ("both", "idle"):
                await report_idle(pool, campaigns, leads_each, 10 if quick else IDLE_SECONDS)
            if parts in ("both", "lateness"):
                await report_lateness(pool, due_count, temp_dir)
    finally:
        await redis.flushdb()
        await redis.aclose()
        remote.ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute("DROP DATABASE IF EXISTS outreach_bench_scheduler WITH (FORCE)")
        await admin.close()


async def report_idle(pool, campaigns: int, leads_each: int, seconds: float) -> None:
    async with db.transaction(pool) as conn:
        org_id = await conn.fetchval("INSERT INTO organizations (name, kind, plan) VALUES ('idle', 'local', "
                                     "'enterprise') RETURNING id")
        await load_future_timers(conn, org_id, campaigns, leads_each)
    idle = await measure_idle(pool, seconds)
    print(f"idle: {campaigns * leads_each:,} future timers, {idle['seconds']:.0f} s: "
                  f"{idle['cpu_seconds']:.3f} CPU s ({100 * idle['cpu_seconds'] / idle['seconds']:.2f}% of a core), "
          f"{idle['claims']} claims, {idle['lookups']} next-wake lookups, {idle['woken']} campaigns woken", flush=True)


async def report_lateness(pool, count: int, temp_dir: str) -> None:
    settings = Settings(database_url=BENCH_URL, redis_url=REDIS_URL, secret_key="bench", sandbox=True)
    remote.init_ray(settings, temp_dir=temp_dir)
    late = await measure_lateness(pool, settings, count)
    print(f"lateness: {late['leads']:,} leads due over one minute: p50 {late['p50'] * 1000:.0f} ms, "
          f"p99 {late['p99'] * 1000:.0f} ms, max {late['max'] * 1000:.0f} ms; {late['woken']} wake-ups, "
          f"{late['duplicates']} duplicate sends, all sent {late['wall']:.0f} s after the scheduler started",
          flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scenarios, for a smoke run")
    parser.add_argument("--part", choices=("both", "idle", "lateness"), default="both")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.quick, arguments.part))
