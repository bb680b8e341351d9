"""Operational routes: liveness and readiness."""
from __future__ import annotations

import asyncio

from aiohttp import web

from outreach.http import keys, params, validation, wire

READY_TIMEOUT_SECONDS = 2


class Health(validation.Reply):
    status: str


class Readiness(validation.Reply):
    status: validation.one_of(("ready", "unavailable"))
    checks: dict


@params.answers(200, Health)
async def healthz(request: web.Request) -> web.Response:
    return wire.json_response({"status": "ok"})


@params.answers(200, Readiness)
async def readyz(request: web.Request) -> web.Response:
    checks = {"postgres": await check(ping_postgres(request)), "redis": await check(ping_redis(request))}
    ready = all(value == "ok" for value in checks.values())
    return wire.json_response({"status": "ready" if ready else "unavailable", "checks": checks},
                              status=200 if ready else 503)


async def check(probe) -> str:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means not ready; the body says which
        return f"error: {type(exc).__name__}"
    return "ok"


async def ping_postgres(request: web.Request) -> None:
    async with request.app[keys.DB].acquire() as conn:
        await conn.fetchval("SELECT 1")


async def ping_redis(request: web.Request) -> None:
    await request.app[keys.REDIS].ping()


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)
