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
