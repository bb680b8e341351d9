"""The `outreach` command, run as a user would run it."""
from __future__ import annotations

import asyncio
import os
import sys

from outreach.storage import api_keys
from tests.conftest import TEST_REDIS_URL

CAMPAIGNS = "/api/dashboard/campaigns"


async def run_cli(*args: str, env: dict) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "outreach.cli", *args, env={**os.environ, "REDIS_URL": TEST_REDIS_URL, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, out.decode(), err.decode()


async def test_api_key_create_prints_a_working_key(database_url, http, tmp_path):
    env = {"DATABASE_URL": database_url, "XDG_DATA_HOME": str(tmp_path)}
    code, out, err = await run_cli("api-key", "create", "--org", "Self Hosted", env=env)
    assert code == 0, err
    key = out.strip()
    assert api_keys.looks_like_key(key)
    async with http.get(CAMPAIGNS, headers={"Authorization": f"Bearer {key}"}) as response:
        assert response.status == 200
    code, out_again, _ = await run_cli("api-key", "create", "--org", "Self Hosted", env=env)
    assert code == 0 and out_again.strip() != key


async def test_migrate_is_idempotent(database_url, tmp_path):
    code, out, err = await run_cli("migrate", env={"DATABASE_URL": database_url, "XDG_DATA_HOME": str(tmp_path)})
    assert code == 0, err
    assert out.strip() == "applied 0 migration(s)"


async def test_bad_configuration_stops_with_one_line_naming_the_setting(tmp_path):
    code, out, err = await run_cli("migrate", env={"TWILIO_ACCOUNT_SID": "AC123", "XDG_DATA_HOME": str(tmp_path)})
    assert code == 2
    assert err.strip().splitlines() == ["outreach: configuration error: TWILIO_AUTH_TOKEN is required when "
                                        "TWILIO_ACCOUNT_SID is set"]


async def test_unreachable_database_is_one_clear_line(tmp_path):
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/outreach", "XDG_DATA_HOME": str(tmp_path)}
    code, _, err = await run_cli("migrate", env=env)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("outreach: Cannot connect to PostgreSQL at 127.0.0.1:1/outreach")


async def test_leads_import_shows_progress_and_a_summary(database_url, pool, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("firstName,email\nA,a@example.com\nB,b@example.com\nB again,B@example.com\n,\nC,\n")
    env = {"DATABASE_URL": database_url, "XDG_DATA_HOME": str(tmp_path)}
    code, out, err = await run_cli("leads", "import", str(path), "--org", "Importers", env=env)
    assert code == 0, err
    assert "75/75 bytes read, 4 rows copied" in out and "imported 3 of 4 rows; skipped 1 (1 duplicates, 0 with row errors)" in out
    org = await pool.fetchval("SELECT id FROM organizations WHERE name = 'Importers'")
    assert await pool.fetchval("SELECT count(*) FROM leads WHERE org_id = $1", org) == 3


async def test_leads_import_errors_are_one_line(database_url, tmp_path):
    env = {"DATABASE_URL": database_url, "XDG_DATA_HOME": str(tmp_path)}
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    for path in (bad, tmp_path / "missing.csv"):
        code, _, err = await run_cli("leads", "import", str(path), "--org", "X", env=env)
        assert code == 1 and err.strip().splitlines()[-1].startswith("outreach: "), err
