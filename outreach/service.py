"""The one place that wires it all: settings, the database, Redis and the HTTP app."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import secrets
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from outreach.http.app import Deps, build_app
from outreach.runtime.config import Settings
from outreach.storage import api_keys, db, migrate, orgs
from outreach.storage.redis_store import redis_ctx

log = logging.getLogger(__name__)


def load_settings(env=None) -> Settings:
    settings = Settings.from_env(env)
    if not settings.secret_key:
        settings = dataclasses.replace(settings, secret_key=local_secret_key())
    return settings


def local_secret_key() -> str:
    """Outside production a missing OUTREACH_SECRET_KEY is generated once and kept in the user's data folder."""
    folder = pathlib.Path(os.environ.get("XDG_DATA_HOME") or pathlib.Path.home() / ".local" / "share") / "outreach"
    path = folder / "secret.key"
    if path.exists():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    log.warning("OUTREACH_SECRET_KEY is not set: generated one in %s (set it in production)", path)
    return key


async def prepare_database(settings: Settings) -> list[str]:
    await db.ensure_database(settings.database_url)
    return await migrate.migrate(settings.database_url)


@contextlib.asynccontextmanager
async def deps_ctx(settings: Settings) -> AsyncIterator[Deps]:
    async with db.pool_ctx(settings.database_url) as pool, redis_ctx(settings.redis_url) as redis:
        yield Deps(pool=pool, redis=redis)


async def serve(settings: Settings) -> None:
    await prepare_database(settings)
    async with deps_ctx(settings) as deps:
        await deps.redis.ping()
        runner = web.AppRunner(build_app(settings, deps), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        log.info("Outreach Runtime listening on http://%s:%s", settings.host, settings.port)
        try:
            await wait_for_signal()
        finally:
            await runner.cleanup()


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def create_api_key(settings: Settings, org_name: str, key_name: str) -> tuple[dict, str]:
    await prepare_database(settings)
    async with db.pool_ctx(settings.database_url, min_size=1, max_size=1) as pool:
        async with db.transaction(pool) as conn:
            org_id = await orgs.local_org(conn, org_name)
            row, key = await api_keys.create_key(conn, org_id, key_name)
    return {**row, "org_id": org_id}, key
