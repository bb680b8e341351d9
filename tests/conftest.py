"""Fixtures over the real stack: a fresh PostgreSQL database per run, Redis, and the HTTP app."""
from __future__ import annotations

import dataclasses
import os

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.runtime.config import Settings
from outreach.storage import api_keys, db, migrate, orgs
from outreach.storage.redis_store import redis_ctx
from tests.fakes.clerk import FakeClerk
from tests.fakes.resend import FakeResend
from tests.fakes.twilio import FakeTwilio
from tests.fakes.voice_agent import FakeVoiceAgent

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_DATABASE = f"outreach_test_{os.getpid()}"


@pytest.fixture(scope="session")
async def database_url():
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{TEST_DATABASE}"
    await db.ensure_database(url)
    await migrate.migrate(url)
    yield url
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def pool(database_url):
    async with db.pool_ctx(database_url, min_size=2, max_size=10) as pool:
        yield pool


@pytest.fixture(scope="session")
async def redis():
    async with redis_ctx(TEST_REDIS_URL) as client:
        yield client


@pytest.fixture(scope="session")
async def clerk():
    server = FakeClerk()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(autouse=True)
async def clean_state(request):
    """Every test starts with empty tables and an empty Redis database."""
    yield
    if "pool" not in request.fixturenames:
        return
    pool = request.getfixturevalue("pool")
    tables = await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
    )
    await pool.execute("TRUNCATE " + ", ".join(f'"{row["tablename"]}"' for row in tables) + " CASCADE")
    await request.getfixturevalue("redis").flushdb()


@pytest.fixture
async def resend():
    """A local Resend for the modules that send email for real."""
    fake = await FakeResend().start()
    yield fake
    fake.release()  # requests a test held back (fault injection) answer, so the server stops at once
    await fake.stop()


@pytest.fixture
async def fake_twilio():
    fake = await FakeTwilio().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def fake_agent():
    fake = await FakeVoiceAgent().start()
    yield fake
    await fake.stop()


@pytest.fixture
def settings(database_url, clerk) -> Settings:
    return Settings(database_url=database_url, redis_url=TEST_REDIS_URL, secret_key="test-secret",
                    clerk_jwks_url=clerk.jwks_url, max_import_bytes=1024 * 1024)


@pytest.fixture
async def http(settings, pool, redis):
    """An unauthenticated client of the app on a local port."""
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@dataclasses.dataclass
class Reply:
    status: int
    body: object
    headers: dict


class Api:
    """A client acting as one organization (through an API key unless a token is given)."""

    def __init__(self, http: TestClient, token: str, org_id=None):
        self.http = http
        self.token = token
        self.org_id = org_id

    async def call(self, method: str, path: str, *, json=None, data=None, headers=None, raw: bytes | None = None):
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        kwargs = {"json": json} if json is not None else {"data": raw if raw is not None else data}
        async with self.http.request(method, path, headers=all_headers, **kwargs) as response:
            text = await response.text()
            body = await response.json(content_type=None) if text else None
            return Reply(response.status, body, dict(response.headers))

    async def get(self, path, **kwargs):
        return await self.call("GET", path, **kwargs)

    async def post(self, path, **kwargs):
        return await self.call("POST", path, **kwargs)

    async def patch(self, path, **kwargs):
        return await self.call("PATCH", path, **kwargs)

    async def put(self, path, **kwargs):
        return await self.call("PUT", path, **kwargs)

    async def delete(self, path, **kwargs):
        return await self.call("DELETE", path, **kwargs)


async def tenant_on(client: TestClient, pool, name: str, plan: str | None = None) -> Api:
    """A self-hosted organization (created if absent, on `plan` if given) and an Api acting for it on `client`."""
    async with db.transaction(pool) as conn:
        org_id = await orgs.local_org(conn, name)
        if plan:
            await orgs.set_plan(conn, org_id, plan)
        _, key = await api_keys.create_key(conn, org_id, "test")
    return Api(client, key, org_id)


@pytest.fixture
def make_tenant(http, pool):
    """Factory: a new self-hosted organization and an Api client acting for it."""

    async def make(name: str = "acme") -> Api:
        return await tenant_on(http, pool, name)

    return make


@pytest.fixture
async def api(make_tenant) -> Api:
    return await make_tenant("acme")


@pytest.fixture
async def other(make_tenant) -> Api:
    return await make_tenant("globex")


def _test_runner_options():
    from outreach.actors.campaign_runner import RunnerOptions

    # Modest concurrency, so a run with provider latency lasts long enough for a test to act on it.
    return RunnerOptions(batch_size=50, max_in_flight=100, concurrency={"email": 20, "telegram": 4, "voice": 4})


TEST_RUNNER_OPTIONS = _test_runner_options()


@pytest.fixture(scope="session")
def ray_settings(database_url) -> Settings:
    """What campaign actors run with: sandbox providers with no latency and no Telegram pacing."""
    return Settings(database_url=database_url, redis_url=TEST_REDIS_URL, secret_key="test-secret", sandbox=True,
                    sandbox_latency_ms=0, telegram_pacing_override=(0.0, 0.0))


@pytest.fixture(scope="session")
def ray_cluster(ray_settings):
    """One local Ray for the whole run, on loopback, stopped at the end (only the one we started)."""
    import shutil

    import ray

    from outreach.actors import remote

    temp_dir = f"/tmp/ray-outreach-{os.getpid()}"
    remote.init_ray(ray_settings, temp_dir=temp_dir)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
async def ray_http(ray_cluster, ray_settings, settings, pool, redis):
    """A client of an app that runs campaigns on Ray."""
    from outreach.actors import remote

    runtime = remote.RayRuntime(ray_settings, TEST_RUNNER_OPTIONS)
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, runtime=runtime)),
                                   host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def ray_api(ray_http, pool) -> Api:
    return await tenant_on(ray_http, pool, "runner")
