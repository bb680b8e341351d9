"""The app factory and the route table."""
from __future__ import annotations

import dataclasses

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from outreach.http import (
    analytics, api_keys, auth, billing, calls, campaigns, channels, demo, email, execution, keys, leads, numbers,
    live, onboarding, ops, progress, scripts, telegram, voice,
)
from outreach.http.errors import error_middleware
from outreach.runtime.config import Settings

RESOURCE_MODULES = (
    ops, live, demo, campaigns, execution, progress, leads, api_keys, channels, onboarding, scripts, voice, calls, email,
    numbers, telegram, billing, analytics,
)


@dataclasses.dataclass
class Deps:
    """What the handlers need, built and closed by the caller (service.py, or the tests)."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    runtime: object = None  # actors.remote.RayRuntime; None where this process runs no campaigns


def build_app(settings: Settings, deps: Deps) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth.auth_middleware], client_max_size=2 * 1024 * 1024)
    app[keys.SETTINGS] = settings
    app[keys.DB] = deps.pool
    app[keys.REDIS] = deps.redis
    app[keys.AUTHENTICATOR] = auth.Authenticator(settings, deps.pool)
    app[keys.RUNTIME] = deps.runtime
    app[keys.HUB] = progress.StreamHub(deps.redis)
    app.on_cleanup.append(close_resources)
    setup_routes(app)
    return app


def setup_routes(app: web.Application) -> None:
    for module in RESOURCE_MODULES:
        module.add_routes(app.router)


async def close_resources(app: web.Application) -> None:
    await app[keys.HUB].close()
    await app[keys.AUTHENTICATOR].close()
