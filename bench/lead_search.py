"""Lead search at a million leads per organization: our indexed search against the original's query.

Run: python bench/lead_search.py [--leads 1000000] [--repeat 20]

Builds a throwaway database (outreach_bench_search) from the migrations, loads N leads for one
organization and N/10 for another, then times, in the same run, the product's query (one ILIKE on
the trigram-indexed search_text, scoped by org, through storage.leads.list_leads) against the
original system's query (six ILIKEs OR-ed per column, no index), and prints a table of medians
and their ratio.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import asyncpg

from outreach.runtime.models import Page
from outreach.storage import db, leads, migrate, sql

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_URL = "postgresql://postgres@127.0.0.1:5432/outreach_bench_search"
ORIGINAL_QUERY = """
SELECT * FROM leads WHERE org_id = $1 AND (first_name ILIKE $2 OR last_name ILIKE $2 OR email ILIKE $2
       OR phone ILIKE $2 OR company ILIKE $2 OR telegram_username ILIKE $2)
ORDER BY created_at DESC LIMIT 25
"""
ORIGINAL_COUNT = """
SELECT count(*) FROM leads WHERE org_id = $1 AND (first_name ILIKE $2 OR last_name ILIKE $2 OR email ILIKE $2
       OR phone ILIKE $2 OR company ILIKE $2 OR telegram_username ILIKE $2)
"""
LOAD = """
INSERT INTO leads (org_id, first_name, last_name, email, phone, company, telegram_username, created_at)
SELECT $1, 'First' || g, 'Last' || md5(g::text), 'lead' || g || '@example' || (g % 997) || '.com',
       '+38050' || lpad(g::text, 7, '0'), 'Company ' || (g % 5000), 'tg_' || md5((g * 7)::text),
       now() - g * interval '1 second'
FROM generate_series(1, $2) AS g
"""


async def prepare(count: int):
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute("DROP DATABASE IF EXISTS outreach_bench_search WITH (FORCE)")
    await admin.execute("CREATE DATABASE outreach_bench_search")
    await admin.close()
    await migrate.migrate(BENCH_URL)
    conn = await asyncpg.connect(BENCH_URL)
    org, other = [await conn.fetchval("INSERT INTO organizations (name, kind) VALUES ($1, 'local') RETURNING id", name)
                  for name in ("bench", "other")]
    started = time.perf_counter()
    await conn.execute(LOAD, org, count)
    await conn.execute(LOAD, other, max(1, count // 10))
    await conn.execute("ANALYZE leads")
    print(f"loaded {count:,} + {count // 10:,} leads in {time.perf_counter() - started:.1f} s")
    await conn.close()
    return org


async def median_ms(run, repeat: int) -> float:
    await run()  # warm the cache and the plan
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def main(count: int, repeat: int) -> None:
    org = await prepare(count)
    terms = {"rare (one email)": f"lead{count // 2}@", "missing": "no-such-lead", "common (a company)": "company 42",
             "phone digits": "0501234"}
    async with db.pool_ctx(BENCH_URL, min_size=1, max_size=2) as pool:
        print(f"\n{'search':<22}{'ours p50 ms':>14}{'original p50 ms':>18}{'ratio':>9}")
        for label, term in terms.items():
            async def ours(term=term):
                async with pool.acquire() as conn:
                    await leads.list_leads(conn, org, Page(1, 25), search=term, status=None)

            async def original(term=term):
                pattern = f"%{sql.escape_like(term)}%"
                async with pool.acquire() as conn:
                    await conn.fetch(ORIGINAL_QUERY, org, pattern)
                    await conn.fetchval(ORIGINAL_COUNT, org, pattern)

            mine, theirs = await median_ms(ours, repeat), await median_ms(original, max(3, repeat // 4))
            print(f"{label:<22}{mine:>14.2f}{theirs:>18.2f}{theirs / mine:>8.0f}x")

        async def first_page():
            async with pool.acquire() as conn:
                await leads.list_leads(conn, org, Page(1, 25), search=None, status=None)

        print(f"{'no search, page 1':<22}{await median_ms(first_page, repeat):>14.2f}")
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute("DROP DATABASE IF EXISTS outreach_bench_search WITH (FORCE)")
    await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.leads, arguments.repeat))
