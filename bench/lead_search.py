"""Lead search at a million leads in one organization, through HTTP, beside the original's query.

Run: python bench/lead_search.py [--leads 1000000] [--requests 200] [--explain]

Builds a throwaway database (outreach_bench_search) from the migrations and loads N leads into one organization
and N/10 into another: the rows are generated inside PostgreSQL into the table with its secondary indexes
dropped, and the indexes (the trigram GIN among them) are built afterwards, as a bulk load should be. Then it
serves the API on a loopback port and times `GET /api/dashboard/leads` (page 1 of 25 with its `total`) for six
cases, p50 and p99 over --requests requests each, and in the same run the original system's query for the same
case (six ILIKEs OR-ed per column plus an exact count, straight to PostgreSQL, so HTTP is not counted against
it). --explain prints EXPLAIN (ANALYZE, BUFFERS) of our two statements per case.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import aiohttp
import asyncpg
from aiohttp import web

import machine
from outreach.http.app import Deps, build_app
from outreach.runtime.config import Settings
from outreach.storage import api_keys, db, leads, migrate, search_trigrams, sql
from outreach.storage.redis_store import redis_ctx
from outreach.runtime.models import Page

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_URL = "postgresql://postgres@127.0.0.1:5432/outreach_bench_search"
REDIS_URL = "redis://127.0.0.1:6379/11"
ORIGINAL_WHERE = """org_id = $1 AND ($3::lead_status IS NULL OR status = $3) AND ($2::text IS NULL OR
    first_name ILIKE $2 OR last_name ILIKE $2 OR email ILIKE $2 OR phone ILIKE $2 OR company ILIKE $2
    OR telegram_username ILIKE $2)"""
ORIGINAL_PAGE = f"SELECT * FROM leads WHERE {ORIGINAL_WHERE} ORDER BY created_at DESC LIMIT 25"
ORIGINAL_COUNT = f"SELECT count(*) FROM leads WHERE {ORIGINAL_WHERE}"
# One company in 5,000 (~200 leads per million), one lead in 20 contacted; emails and phones unique.
LOAD = """
INSERT INTO leads (org_id, first_name, last_name, email, phone, company, telegram_username, status, created_at)
SELECT $1, 'First' || g, 'Last' || md5(g::text), 'lead' || g || '@example' || (g % 997) || '.com',
       '+38050' || lpad(g::text, 7, '0'), 'Company ' || lpad((g % 5000)::text, 4, '0'), 'tg_' || md5((g * 7)::text),
       CASE WHEN g % 20 = 0 THEN 'contacted' ELSE 'new' END::lead_status, now() - g * interval '1 second'
FROM generate_series(1, $2) AS g
"""


def cases(count: int) -> dict[str, dict]:
    return {"rare term (one email)": {"search": f"lead{count // 2}@"}, "missing term": {"search": "no-such-lead"},
            "common term (~200 matches)": {"search": "company 0042"}, "phone digits": {"search": "0501234"},
            "status filter (5%)": {"status": "contacted"}, "no search, page 1": {}}


async def load(conn, org, other, count: int) -> None:
    started = time.perf_counter()
    await machine.load_without_indexes(conn, "leads", (LOAD, org, count), (LOAD, other, max(1, count // 10)))
    print(f"loaded {count:,} + {count // 10:,} leads (indexes built after, VACUUM ANALYZE): "
          f"{time.perf_counter() - started:.1f} s")


async def prepare(count: int) -> tuple[object, str]:
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute("DROP DATABASE IF EXISTS outreach_bench_search WITH (FORCE)")
    await admin.execute("CREATE DATABASE outreach_bench_search")
    await admin.close()
    await migrate.migrate(BENCH_URL)
    conn = await asyncpg.connect(BENCH_URL)
    try:
        org, other = [await conn.fetchval("INSERT INTO organizations (name, kind, plan) VALUES ($1, 'local', "
                                          "'enterprise') RETURNING id", name) for name in ("bench", "other")]
        _, key = await api_keys.create_key(conn, org, "bench")
        await load(conn, org, other, count)
    finally:
        await conn.close()
    return org, key


def percentiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(len(ordered) * 0.99) - 1)]


async def time_http(http: aiohttp.ClientSession, url: str, query: dict, requests: int) -> tuple[list, dict]:
    timings, body = [], None
    for _ in range(5):  # warm the connection, the caches and the plans
        async with http.get(url, params=query) as reply:
            body = await reply.json()
            assert reply.status in (200, 404), body
    for _ in range(requests):
        started = time.perf_counter()
        async with http.get(url, params=query) as reply:
            body = await reply.json()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, body


async def time_original(pool, org, query: dict, repeat: int) -> float:
    pattern = f"%{sql.escape_like(query['search'])}%" if "search" in query else None
    timings = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.fetch(ORIGINAL_PAGE, org, pattern, query.get("status"))
            await conn.fetchval(ORIGINAL_COUNT, org, pattern, query.get("status"))
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[1:])


async def explain(pool, org, query: dict) -> None:
    async with pool.acquire() as conn:
        common = await search_trigrams.common_trigrams(conn)
    where, args = leads.lead_filter(org, query.get("search"), query.get("status"), common)
    at = len(args)
    statements = [(f"SELECT {leads.COLUMNS} FROM leads WHERE {where} ORDER BY created_at DESC, id DESC "
                   f"LIMIT ${at + 1} OFFSET ${at + 2}", [*args, 25, 0]),
                  (f"SELECT count(*) FROM (SELECT 1 FROM leads WHERE {where} LIMIT ${at + 1}) AS matched",
                   [*args, leads.EXACT_TOTAL_UP_TO + 1])]
    async with pool.acquire() as conn:
        for statement, values in statements:
            plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *values)
            print("    " + "\n    ".join(row[0] for row in plan))


async def serve(pool, redis) -> tuple[web.AppRunner, str]:
    settings = Settings(database_url=BENCH_URL, redis_url=REDIS_URL, secret_key="bench")
    runner = web.AppRunner(build_app(settings, Deps(pool=pool, redis=redis)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/api/dashboard/leads"


async def measure(arguments, org, key: str) -> None:
    async with db.pool_ctx(BENCH_URL, min_size=2, max_size=4) as pool, redis_ctx(REDIS_URL) as redis:
        runner, url = await serve(pool, redis)
        original_repeat = max(2, arguments.requests // 40)
        print(f"\n{'case':<28}{'matches':>10}{'p50 ms':>9}{'p99 ms':>9}{'original p50 ms':>17}{'ratio p50':>11}")
        try:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
                floor, _ = await time_http(http, f"{url}/{uuid.uuid4()}", {}, arguments.requests)
                print(f"{'HTTP floor (auth, a 404)':<28}{'':>10}{percentiles(floor)[0]:>9.2f}{percentiles(floor)[1]:>9.2f}")
                for label, query in cases(arguments.leads).items():
                    timings, body = await time_http(http, url, query, arguments.requests)
                    p50, p99 = percentiles(timings)
                    theirs = await time_original(pool, org, query, original_repeat)
                    total = f"{body['pagination']['total']:,}{'+' if body['pagination']['totalCapped'] else ''}"
                    print(f"{label:<28}{total:>10}{p50:>9.2f}{p99:>9.2f}{theirs:>17.1f}{theirs / p50:>10.0f}x")
                    if arguments.explain:
                        await explain(pool, org, query)
        finally:
            await runner.cleanup()


async def main(arguments) -> None:
    print(await machine.describe(ADMIN_URL))
    org, key = await prepare(arguments.leads)
    try:
        await measure(arguments, org, key)
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute("DROP DATABASE IF EXISTS outreach_bench_search WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of each case")
    asyncio.run(main(parser.parse_args()))
