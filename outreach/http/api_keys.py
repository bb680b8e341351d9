"""API key routes: list, create (the key is shown once), delete. Keys belong to one organization."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, schema, wire
from outreach.http.auth import principal
from outreach.runtime import errors
from outreach.storage import api_keys, db

CREATED_FIELDS = ("id", "name", "prefix", "last4", "created_at")
KEY_CREATE = schema.Model("ApiKeyCreate", [
    schema.Field("name", schema.Text(strip=True, min_length=1), required=True, message="Name is required"),
])
# No id names no key: 400. An id that is not a UUID names no key of the org either: the same 404 as a foreign id.
KEY_DELETE = schema.Model("ApiKeyDeleteQuery", [
    schema.Field("id", schema.Uuid(), required=True, empty=schema.blank, error=errors.NotFound,
                 message={"missing": "Key ID is required", "type": "Key not found"}),
], text=True)
KEY_KINDS = {"id": schema.Uuid(), "name": schema.Text(), "prefix": schema.Text(), "last4": schema.Text(),
             "createdAt": schema.DateTime()}
API_KEY = schema.reply("ApiKey", {**KEY_KINDS, "lastUsedAt": schema.DateTime()}, ("lastUsedAt",))


@params.answers(200, schema.reply("ApiKeyList", {"keys": schema.Array(schema.Object(API_KEY))}))
async def list_api_keys(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await api_keys.list_keys(conn, principal(request).org_id)
    return wire.json_response({"keys": [wire.to_wire(row) for row in rows]})


@params.accepts(body=KEY_CREATE)
@params.answers(201, schema.reply("ApiKeyCreated", {"key": schema.Text(), **KEY_KINDS}))
async def create_api_key(request: web.Request) -> web.Response:
    name = (await params.body(request))["name"]
    async with db.connection(request.app[keys.DB]) as conn:
        row, key = await api_keys.create_key(conn, principal(request).org_id, name)
    shown = {field: row[field] for field in CREATED_FIELDS}
    return wire.json_response({"key": key, **wire.to_wire(shown)}, status=201)


@params.accepts(query=KEY_DELETE)
@params.answers(200, schema.SUCCESS)
async def delete_api_key(request: web.Request) -> web.Response:
    key_id = params.query(request)["id"]
    async with db.connection(request.app[keys.DB]) as conn:
        await api_keys.delete_key(conn, principal(request).org_id, key_id)
    return wire.json_response({"success": True})


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/settings/api-keys"
    router.add_get(base, list_api_keys)
    router.add_post(base, create_api_key)
    router.add_delete(base, delete_api_key)
