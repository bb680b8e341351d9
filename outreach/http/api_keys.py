"""API key routes: list, create (the key is shown once), delete. Keys belong to one organization."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.runtime import errors
from outreach.storage import api_keys, db

CREATED_FIELDS = ("id", "name", "prefix", "last4", "created_at")


async def list_api_keys(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await api_keys.list_keys(conn, principal(request).org_id)
    return wire.json_response({"keys": [wire.to_wire(row) for row in rows]})


async def create_api_key(request: web.Request) -> web.Response:
    name = params.required_name(await params.read_json(request))
    async with db.connection(request.app[keys.DB]) as conn:
        row, key = await api_keys.create_key(conn, principal(request).org_id, name)
    shown = {field: row[field] for field in CREATED_FIELDS}
    return wire.json_response({"key": key, **wire.to_wire(shown)}, status=201)


async def delete_api_key(request: web.Request) -> web.Response:
    raw_id = request.query.get("id")
    if not raw_id:
        raise errors.Invalid("Key ID is required")
    key_id = params.parse_uuid(raw_id, "Key not found")
    async with db.connection(request.app[keys.DB]) as conn:
        await api_keys.delete_key(conn, principal(request).org_id, key_id)
    return wire.json_response({"success": True})


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/settings/api-keys"
    router.add_get(base, list_api_keys)
    router.add_post(base, create_api_key)
    router.add_delete(base, delete_api_key)
