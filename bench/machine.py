"""The header every benchmark prints first, so a README row can say where and how its figures were measured."""
from __future__ import annotations

import datetime
import os
import platform
import sys

import asyncpg


async def describe(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"date: {now}\nmachine: {os.cpu_count()} cores, {platform.machine()}, load average {load}; "
            f"PostgreSQL {version}; Python {platform.python_version()}\n"
            f"command: python {' '.join(sys.argv)}\n")


async def load_without_indexes(conn, table: str, *statements: tuple) -> None:
    """Run the INSERT statements (sql, *args) with the table's secondary indexes dropped, then build them again
    and VACUUM ANALYZE: a GIN or b-tree built once is far cheaper than one maintained a row at a time."""
    indexes = await conn.fetch("SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = $1 AND NOT "
                               "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", table)
    for row in indexes:
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
    for statement, *args in statements:
        await conn.execute(statement, *args)
    await conn.execute("SET maintenance_work_mem = '512MB'")
    for row in indexes:
        await conn.execute(row["indexdef"])
    await conn.execute(f"VACUUM ANALYZE {table}")
