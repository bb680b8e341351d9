"""The embedded default: with DATABASE_URL and REDIS_URL unset, the CLI brings its own servers."""
from __future__ import annotations

import asyncio
import os
import sys

from outreach.embedded import EmbeddedServers
from outreach.runtime.models import Page
from outreach.storage import db, leads, migrate


async def test_demo_runs_end_to_end_on_embedded_servers(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(OUTREACH_HOME=str(tmp_path / "home"), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "outreach.cli", "demo", "--leads", "40", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode()
    assert process.returncode == 0, text[-3000:]
    assert "using embedded PostgreSQL and Redis under" in text
    assert "status: completed" in text and "processed: 40" in text
    assert (tmp_path / "home" / "postgres" / "PG_VERSION").exists()


async def test_migrations_and_lead_search_work_without_pg_trgm(tmp_path):
    servers = EmbeddedServers(str(tmp_path / "home"))
    url = await asyncio.to_thread(servers.start_postgres)
    try:
        await db.ensure_database(url)
        await migrate.migrate(url)
        async with db.pool_ctx(url) as pool:
            assert await pool.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'") == 0
            org = await pool.fetchval("INSERT INTO organizations (name, kind) VALUES ('e', 'local') RETURNING id")
            async with db.connection(pool) as conn:
                await leads.create_lead(conn, org, {"first_name": "Olga", "email": "olga@acme.io"})
                await leads.create_lead(conn, org, {"first_name": "Ivan", "company": "Globex"})
                rows, total, _ = await leads.list_leads(conn, org, Page(1, 25), search="ACME", status=None)
        assert total == 1 and rows[0]["first_name"] == "Olga"
    finally:
        await asyncio.to_thread(servers.postgres.cleanup)
