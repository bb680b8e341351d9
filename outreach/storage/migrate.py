"""Numbered .sql migrations, applied in order, each in a transaction, under an advisory lock."""
from __future__ import annotations

import importlib.resources
import logging

import asyncpg

from outreach.storage import db

log = logging.getLogger(__name__)
LOCK_KEY = 0x6F757472  # "outr": one lock for every process migrating this database


def list_migrations() -> list[tuple[int, str, str]]:
    folder = importlib.resources.files("outreach.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text()))
    return sorted(found)


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; return the names applied."""
    applied_now = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for number, name, sql in list_migrations():
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name)
            log.info("applied migration %s", name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return applied_now


async def migrate(url: str) -> list[str]:
    conn = await db.connect(url)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()
