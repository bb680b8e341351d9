"""Billing routes: this month's usage against the plan's limits."""
from __future__ import annotations

import dataclasses

from aiohttp import web

from outreach.http import keys, wire
from outreach.http.auth import principal
from outreach.runtime import policy
from outreach.storage import db, usage


async def get_usage(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        row = await usage.current_usage(conn, principal(request).org_id)
    return wire.json_response({
        "minutes": row["minutes"],
        "telegramMessages": row["telegram"],
        "emails": row["emails"],
        "plan": row["plan"],
        "limits": dataclasses.asdict(policy.limits_for(row["plan"])),
    })


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/billing/usage", get_usage)
