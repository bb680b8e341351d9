"""Campaign execution, end to end on Ray, against a sequential baseline measured in the same run.

Run: python bench/execute.py [--leads 100000] [--history 1000000] [--quick]

In the same run it first measures the limit: the bare durable loop of ../shared/ceiling/run.sh (relative to the
repository: its own PostgreSQL and Redis, 200,000 leads, batches of 2,000, 4 workers), then the product at
--leads email leads with 0 ms and 50 ms provider latency on an empty database, then again at 0 ms once the
database holds --history leads and as many past attempts (a finished campaign), and prints each rate over the
ceiling's and the history run over the empty one.

Each scenario loads N email leads into a throwaway database (outreach_bench_execute), then runs the
campaign through the product path: a CampaignRunner inside its Ray actor claims, chooses, writes
attempts, sends through the sandbox email provider (zero or 50 ms latency, 90% sent / 10% bounced),
records every outcome, and publishes every event to the campaign's Redis Stream. The baseline does
what the original system did, over the same provider and database: one lead at a time, awaited
(send, insert the message, mark the lead), on a sample of the leads; its rate is per lead, so the
sample size does not flatter either side.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import re
import subprocess
import sys
import shutil
import time

import asyncpg
import redis.asyncio as aioredis

from outreach.actors import remote
from outreach.runtime.config import Settings
from outreach.runtime.ports import OutboundEmail
from outreach.providers.sandbox import SandboxEmail, SandboxOutcomes
from outreach.storage import db, events, migrate

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import machine  # noqa: E402  (bench/machine.py, beside this file)

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_URL = "postgresql://postgres@127.0.0.1:5432/outreach_bench_execute"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
CEILING = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "ceiling" / "run.sh"
HISTORY_LEADS = """
INSERT INTO leads (org_id, first_name, email, company, status, campaign_id)
SELECT $1::uuid, 'Past' || g, 'past' || g || '@example.org', 'Company ' || (g % 100), 'contacted', $3::uuid
FROM generate_series(1, $2) AS g
"""
HISTORY_STATE = """
INSERT INTO campaign_leads (campaign_id, lead_id, org_id, state, channel)
SELECT $1::uuid, id, $2::uuid, 'sent', 'email' FROM leads WHERE campaign_id = $1::uuid
"""
HISTORY_ATTEMPTS = """
INSERT INTO attempts (campaign_id, lead_id, org_id, channel, idempotency_key, outcome, finished_at)
SELECT $1::uuid, id, $2::uuid, 'email', $1::uuid::text || ':' || id::text || ':email', 'sent', now()
FROM leads WHERE campaign_id = $1::uuid
"""
TEMPLATES = {"email": {"subject": "Hi {{firstName}}", "body": "Hello {{firstName}}, a quick idea for {{company}}."}}
LOAD_LEADS = """
INSERT INTO leads (org_id, first_name, email, company)
SELECT $1, 'Lead' || g, 'lead' || g || '-' || $3 || '@example.com', 'Company ' || (g % 100)
FROM generate_series(1, $2) AS g
"""


async def reset_database() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute("DROP DATABASE IF EXISTS outreach_bench_execute WITH (FORCE)")
    await admin.execute("CREATE DATABASE outreach_bench_execute")
    await admin.close()
    await migrate.migrate(BENCH_URL)


async def make_campaign(conn, org_id, count: int, latency_ms: int, tag: str) -> str:
    await conn.execute(LOAD_LEADS, org_id, count, tag)
    campaign_id = await conn.fetchval(
        """INSERT INTO campaigns (org_id, name, status, channels, channel_priority, settings)
           VALUES ($1, $2, 'active', '["email"]', '["email"]', $3) RETURNING id""",
        org_id, tag, {"templates": TEMPLATES, "sandbox": {"latencyMs": latency_ms}},
    )
    await conn.execute(
        """WITH moved AS (UPDATE leads SET campaign_id = $2 WHERE org_id = $1 AND campaign_id IS NULL RETURNING id)
           INSERT INTO campaign_leads (campaign_id, lead_id, org_id) SELECT $2, id, $1 FROM moved""",
        org_id, campaign_id,
    )
    await settle(conn)
    return campaign_id


async def settle(conn) -> None:
    """Each scenario starts from a settled database: the setup's own update of 100,000 leads and the previous
    scenario's writes vacuumed, statistics fresh, and a checkpoint taken, so no scenario runs beside autovacuum
    or a checkpoint that the one before it left behind."""
    for table in ("leads", "campaign_leads", "attempts", "messages"):
        await conn.execute(f"VACUUM ANALYZE {table}")
    await conn.execute("CHECKPOINT")


async def run_product(settings: Settings, campaign_id) -> tuple[float, dict]:
    started = time.perf_counter()
    summary = await remote.RayRuntime(settings).run(campaign_id)
    return time.perf_counter() - started, summary


async def run_baseline(conn, org_id, latency_ms: int, count: int) -> float:
    """The original's loop: per lead, send and wait, insert the message, update the lead."""
    rows = await conn.fetch("SELECT id, first_name, email FROM leads WHERE org_id = $1 AND campaign_id IS NULL "
                            "ORDER BY id LIMIT $2", org_id, count)
    sender = SandboxEmail(SandboxOutcomes("email", latency=latency_ms / 1000))
    started = time.perf_counter()
    for row in rows:
        email = OutboundEmail("Sales <s@example.com>", row["email"], None, "Hi", f"Hello {row['first_name']}")
        result = await sender.send_email(email, str(row["id"]))
        await conn.execute(
            "INSERT INTO messages (org_id, lead_id, channel, direction, status, content) "
            "VALUES ($1, $2, 'email', 'outbound', $3, $4)",
            org_id, row["id"], "sent" if result.ok else "failed", email.text,
        )
        await conn.execute("UPDATE leads SET status = 'contacted' WHERE id = $1 AND status = 'new'", row["id"])
    return len(rows) / (time.perf_counter() - started)


async def scenario(label: str, count: int, latency_ms: int, baseline_size: int, settings: Settings, redis) -> dict:
    conn = await asyncpg.connect(BENCH_URL)
    await db.init_connection(conn)
    org_id = await conn.fetchval("INSERT INTO organizations (name, kind, plan) VALUES ($1, 'local', 'enterprise') "
                                 "RETURNING id", label)
    campaign_id = await make_campaign(conn, org_id, count, latency_ms, f"s{count}-{latency_ms}")
    elapsed, summary = await run_product(settings, campaign_id)
    stream_entries = await redis.xlen(events.stream_key(campaign_id))
    await conn.execute(LOAD_LEADS, org_id, baseline_size, f"base{count}-{latency_ms}")
    baseline_rate = await run_baseline(conn, org_id, latency_ms, baseline_size)
    await conn.close()
    assert summary["counts"]["processed"] == count, summary["counts"]
    rate = count / elapsed
    return {"label": label, "leads": count, "seconds": elapsed, "rate": rate, "p50": summary["latency_ms"]["p50"],
            "p99": summary["latency_ms"]["p99"], "rss": summary["peak_rss_mb"], "events": stream_entries,
            "baseline": baseline_rate, "ratio": rate / baseline_rate, "baseline_size": baseline_size}


def print_table(rows: list[dict]) -> None:
    print(f"\n{'scenario':<20}{'leads':>8}{'s':>7}{'leads/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'RSS MB':>8}"
          f"{'events':>8}{'baseline/s':>12}{'ratio':>8}")
    for row in rows:
        print(f"{row['label']:<20}{row['leads']:>8,}{row['seconds']:>7.1f}{row['rate']:>9,.0f}{row['p50']:>8.1f}"
              f"{row['p99']:>8.1f}{row['rss']:>8.0f}{row['events']:>8,}{row['baseline']:>12,.0f}{row['ratio']:>7.1f}x")
    print("\nbaseline: sequential, one lead at a time, awaited, on a sample of "
          + ", ".join(f"{row['baseline_size']:,}" for row in rows) + " leads; RSS is the campaign actor's peak")


def run_ceiling() -> float:
    """The bare durable loop's leads/s on this machine, now (its best configuration)."""
    if not CEILING.exists():
        raise SystemExit(f"the ceiling loop is missing: expected {CEILING} (../shared/ceiling beside the repository)")
    done = subprocess.run(["bash", str(CEILING)], capture_output=True, text=True, check=True)
    print(done.stdout.strip(), flush=True)
    if "verify_ok=True" not in done.stdout:
        raise SystemExit("the ceiling loop did not verify")
    return max(float(found.replace(",", "")) for found in re.findall(r"([\d.,]+) leads/s", done.stdout))


async def load_history(count: int) -> None:
    """An organization with `count` leads, all reached by a finished campaign: as many attempts and states."""
    conn = await asyncpg.connect(BENCH_URL)
    try:
        org_id = await conn.fetchval("INSERT INTO organizations (name, kind, plan) VALUES ('history', 'local', "
                                     "'enterprise') RETURNING id")
        campaign_id = await conn.fetchval("INSERT INTO campaigns (org_id, name, status, channels, channel_priority) "
                                          "VALUES ($1, 'past', 'completed', '[\"email\"]', '[\"email\"]') "
                                          "RETURNING id", org_id)
        started = time.perf_counter()
        await machine.load_without_indexes(conn, "leads", (HISTORY_LEADS, org_id, count, campaign_id))
        await machine.load_without_indexes(conn, "campaign_leads", (HISTORY_STATE, campaign_id, org_id))
        await machine.load_without_indexes(conn, "attempts", (HISTORY_ATTEMPTS, campaign_id, org_id))
        print(f"history: {count:,} leads, states and attempts in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await conn.close()


def plan(leads: int, history: int, quick: bool) -> list[tuple]:
    """(label, leads, latency ms, baseline sample, on history) in the order they run."""
    if quick:
        return [("2k email, 0 ms", 2_000, 0, 500, False), ("2k email, 50 ms", 2_000, 50, 40, False)]
    size = f"{leads // 1000}k"
    return [(f"{size} email, 0 ms", leads, 0, 2_000, False), (f"{size} email, 50 ms", leads, 50, 100, False),
            (f"{size} email, 0 ms, history", leads, 0, 2_000, True)][:3 if history else 2]


def print_comparison(rows: list[dict], ceiling: float, history: int) -> None:
    print(f"\nceiling (bare durable loop, same machine, same run): {ceiling:,.0f} leads/s")
    for row in rows:
        print(f"{row['label']:<28}{row['rate']:>9,.0f} leads/s   product/ceiling {row['rate'] / ceiling:.2f}")
    empty = next((row for row in rows if row["label"].endswith("0 ms")), None)
    full = next((row for row in rows if row["label"].endswith("history")), None)
    if empty and full:
        print(f"on {history:,} leads and attempts vs empty: {full['rate'] / empty['rate']:.2f}")
    latent = next((row for row in rows if row["label"].endswith("50 ms")), None)
    if empty and latent:
        print(f"50 ms latency vs 0 ms: {latent['rate'] / empty['rate']:.2f}")


async def log_slow_plans(min_ms: int) -> None:
    """auto_explain for every new session of the bench database (the runner's own pool included): the plan,
    with ANALYZE and BUFFERS, of each statement slower than `min_ms` goes to the PostgreSQL server log."""
    conn = await asyncpg.connect(BENCH_URL)
    try:
        for setting, value in [("session_preload_libraries", "auto_explain"), ("auto_explain.log_analyze", "on"),
                               ("auto_explain.log_buffers", "on"), ("auto_explain.log_triggers", "on"),
                               ("auto_explain.log_min_duration", f"{min_ms}ms")]:
            await conn.execute(f"ALTER DATABASE outreach_bench_execute SET {setting} = '{value}'")
        where = await conn.fetchval("SELECT pg_current_logfile()") or "the server's stderr log (Debian: /var/log/postgresql/)"
        print(f"plans of statements over {min_ms} ms: {where}")
    finally:
        await conn.close()


async def main(arguments) -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    print(await machine.describe(ADMIN_URL))
    ceiling = run_ceiling() if not arguments.no_ceiling else float("nan")
    await reset_database()
    if arguments.explain_over_ms:
        await log_slow_plans(arguments.explain_over_ms)
    settings = Settings(database_url=BENCH_URL, redis_url=REDIS_URL, secret_key="bench", sandbox=True)
    temp_dir = f"/tmp/ray-outreach-bench-{os.getpid()}"
    remote.init_ray(settings, temp_dir=temp_dir)
    redis = aioredis.from_url(REDIS_URL)
    await redis.flushdb()
    rows = []
    try:
        for label, count, latency, baseline_size, on_history in plan(arguments.leads, arguments.history, arguments.quick):
            if on_history:
                await load_history(arguments.history)
            rows.append(await scenario(label, count, latency, baseline_size, settings, redis))
            print(f"{label}: {rows[-1]['rate']:,.0f} leads/s", flush=True)
        print_table(rows)
        print_comparison(rows, ceiling, arguments.history)
    finally:
        await redis.flushdb()
        await redis.aclose()
        remote.ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute("DROP DATABASE IF EXISTS outreach_bench_execute WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000, help="email leads per product scenario")
    parser.add_argument("--history", type=int, default=1_000_000, help="leads and past attempts already held (0: no such run)")
    parser.add_argument("--quick", action="store_true", help="two 2k scenarios, for a smoke run")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling loop (no ratio)")
    parser.add_argument("--explain-over-ms", type=int, default=0,
                        help="log EXPLAIN (ANALYZE, BUFFERS) of the statements slower than this (auto_explain)")
    asyncio.run(main(parser.parse_args()))
