"""The trigrams common among leads, sampled from the table and kept a while per database, so a search can keep
them out of its index scan (runtime/search_terms.py says why)."""
from __future__ import annotations

import time

import asyncpg

COMMON_SHARE = 0.25  # in more leads than this, a trigram's posting list costs more to read than it narrows
SAMPLE_ROWS = 5_000  # enough to tell a trigram in a quarter of the leads; ~50 ms, once per KEEP_SECONDS
SMALL_TABLE = 20_000  # below this many leads every posting list is short: nothing is worth leaving out
KEEP_SECONDS = 600.0
SAMPLED = """
WITH sample AS (SELECT search_text FROM leads TABLESAMPLE SYSTEM ($1) LIMIT $2)
SELECT trigram FROM sample, unnest(show_trgm(search_text)) AS trigram
GROUP BY trigram HAVING count(*) > $3::float8 * (SELECT count(*) FROM sample)
"""

_kept: dict[str, tuple[float, frozenset[str]]] = {}


async def common_trigrams(conn: asyncpg.Connection, clock=time.monotonic) -> frozenset[str]:
    database = conn._params.database  # asyncpg keeps the connection's parameters only there
    kept = _kept.get(database)
    if kept and kept[0] > clock():
        return kept[1]
    common = await sample_common(conn)
    _kept[database] = (clock() + KEEP_SECONDS, common)
    return common


async def sample_common(conn: asyncpg.Connection) -> frozenset[str]:
    rows = await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'leads'::regclass")
    if rows < SMALL_TABLE:
        return frozenset()
    try:
        found = await conn.fetch(SAMPLED, min(100.0, 100.0 * 2 * SAMPLE_ROWS / rows), SAMPLE_ROWS, COMMON_SHARE)
    except asyncpg.UndefinedFunctionError:  # no pg_trgm (an embedded PostgreSQL): no index to spare either
        return frozenset()
    return frozenset(row["trigram"] for row in found)


def forget() -> None:
    """Sample again at the next search (after a bulk load, or in tests)."""
    _kept.clear()
