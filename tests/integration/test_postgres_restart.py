"""PostgreSQL goes away for a few seconds in the middle of an email campaign on Ray: the run stops claiming and
sending at once, waits for the database, and finishes by itself once it is back, every lead emailed once.

The database is a throwaway cluster this test starts (initdb + pg_ctl as the postgres user, on a free port),
never the shared server."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.actors import remote
from outreach.http.app import Deps, build_app
from outreach.runtime.config import Settings
from outreach.storage import db, migrate
from tests.conftest import TEST_REDIS_URL, tenant_on
from tests.fakes.resend import FakeResend
from tests.integration.test_execution import setup_campaign
from tests.integration.test_self_healing import WIDE, assert_each_lead_emailed_once, until_completed, wait_until

OUTAGE_SECONDS = 5
pytestmark = pytest.mark.skipif(shutil.which("pg_ctl") is None or shutil.which("runuser") is None,
                                reason="needs PostgreSQL's initdb/pg_ctl and runuser")


@dataclasses.dataclass
class Cluster:
    data: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/outreach_restart"

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", "pg_ctl", "-D", self.data, "-w", *args],
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self.pg_ctl("-o", options, "-l", os.path.join(self.data, "server.log"), "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def cluster():
    data = tempfile.mkdtemp(prefix="outreach-pg-")
    shutil.chown(data, "postgres", "postgres")
    subprocess.run(["runuser", "-u", "postgres", "--", "initdb", "-D", data, "-U", "postgres", "--auth=trust",
                    "--no-sync"], check=True, capture_output=True, timeout=120)
    server = Cluster(data, free_port())
    await asyncio.to_thread(server.start)
    try:
        await db.ensure_database(server.url)
        await migrate.migrate(server.url)
        yield server
    finally:
        await asyncio.to_thread(subprocess.run, ["runuser", "-u", "postgres", "--", "pg_ctl", "-D", data, "-w",
                                                 "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
async def fake():
    server = FakeResend()
    await server.start()
    yield server
    await server.stop()


async def test_a_postgres_restart_mid_run_heals_by_itself(ray_cluster, cluster, redis, clerk, fake):
    settings = Settings(database_url=cluster.url, redis_url=TEST_REDIS_URL, secret_key="test-secret",
                        clerk_jwks_url=clerk.jwks_url)
    actor_settings = dataclasses.replace(settings, resend_api_key=fake.api_key, resend_api_url=fake.url(),
                                         email_from="Runner <runner@outreach.test>", resend_rate_per_second=60)
    async with db.pool_ctx(cluster.url, min_size=1, max_size=5) as pool:
        app = build_app(settings, Deps(pool=pool, redis=redis, runtime=remote.RayRuntime(actor_settings, WIDE)))
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            api = await tenant_on(client, pool, "restart")
            campaign_id = await setup_campaign(api, pool, 400)
            assert (await api.post(f"/api/dashboard/campaigns/{campaign_id}/start")).status == 200
            await wait_until(lambda: sent_at_least(fake, 60), timeout=30)

            await asyncio.to_thread(cluster.stop)  # the outage: the run can record nothing now
            stopped_at = time.monotonic()
            await asyncio.sleep(OUTAGE_SECONDS)  # how long the database stays away (the fault itself)
            late = [request for request in fake.requests if request["at"] > stopped_at + 1.5]
            await asyncio.to_thread(cluster.start)

            assert late == [], "sends started while their attempts could not be written"
            assert len(fake.sent) < 400, "the run finished before the outage: nothing was tested"
            await until_completed(pool, campaign_id, timeout=60)
            await assert_each_lead_emailed_once(pool, fake, campaign_id)
            assert await pool.fetchval("SELECT status_reason FROM campaigns WHERE id = $1",
                                       uuid.UUID(campaign_id)) is None
        finally:
            await client.close()


async def sent_at_least(fake: FakeResend, count: int) -> bool:
    return len(fake.sent) >= count
