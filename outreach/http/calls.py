"""Call log routes: the org's calls, newest first, and one call in full."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.storage import calls, db


async def list_calls(request: web.Request) -> web.Response:
    page = params.page_from(request, 50)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await calls.list_calls(conn, principal(request).org_id, page)
    return wire.json_response({"calls": [wire.to_wire(row) for row in rows],
                               "pagination": params.pagination(page, total)})


async def get_call(request: web.Request) -> web.Response:
    call_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await calls.get_call(conn, principal(request).org_id, call_id)
    return wire.json_response(wire.to_wire(row))


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/calls"
    router.add_get(base, list_calls)
    router.add_get(base + "/{id}", get_call)
