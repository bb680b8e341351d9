"""`outreach serve` shuts down gracefully: on SIGTERM it stops accepting, finishes in-flight requests, exits 0."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp

from tests.conftest import TEST_REDIS_URL
from tests.integration.test_runner import TEMPLATES


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_healthy(base: str, process) -> None:
    async with asyncio.timeout(120), aiohttp.ClientSession() as http:
        while True:
            assert process.returncode is None, "the server exited during start-up"
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)


async def test_sigterm_finishes_the_request_in_flight_then_exits(database_url, make_tenant, pool, tmp_path):
    api = await make_tenant("shutdown")
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", api.org_id)
    campaign = await pool.fetchval(
        """INSERT INTO campaigns (org_id, name, channels, channel_priority, settings)
           VALUES ($1, 'c', '["email"]', '["email"]', $2) RETURNING id""",
        api.org_id, {**TEMPLATES, "sandbox": {"latencyMs": 300}})
    await pool.execute(
        """WITH made AS (INSERT INTO leads (org_id, email, campaign_id)
                         SELECT $1, 'l' || g || '@example.com', $2 FROM generate_series(1, 30) g RETURNING id)
           INSERT INTO campaign_leads (campaign_id, lead_id, org_id) SELECT $2, id, $1 FROM made""",
        api.org_id, campaign)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "OUTREACH_SANDBOX": "1",
           "OUTREACH_PORT": str(port), "OUTREACH_HOME": str(tmp_path), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "outreach.cli", "serve", env=env,
                                                   stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, process)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.token}"}) as http:
            execute = asyncio.create_task(http.post(f"{base}/api/dashboard/campaigns/{campaign}/execute"))
            async with asyncio.timeout(60):  # the run has started: attempts are being written
                while not await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign):
                    await asyncio.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            response = await asyncio.wait_for(execute, 60)
            body = await response.json()
        assert response.status == 200 and body["progress"]["processed"] == 30
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = (await process.stderr.read()).decode()
    assert "shutting down" in log and '"message":"stopped"' in log
