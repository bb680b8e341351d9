"""Script routes: CRUD of the call scripts of an organization."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, schema, wire
from outreach.http.auth import principal
from outreach.storage import db, scripts


NAME = schema.Text(strip=True, min_length=1)
CONTENT_MESSAGE = "content must be a string"
HANDLERS = schema.Array(schema.Text())
HANDLERS_MESSAGE = "objectionHandlers must be an array of strings"

SCRIPT_CREATE = schema.Model("ScriptCreate", [
    schema.Field("name", NAME, required=True, message="Name is required"),
    schema.Field("content", schema.Text(), default="", message=CONTENT_MESSAGE),
    schema.Field("objectionHandlers", HANDLERS, default=[], message=HANDLERS_MESSAGE),
])
# An update applies only the keys present; null is not text.
SCRIPT_UPDATE = schema.Model("ScriptUpdate", [
    schema.Field("name", NAME, empty=schema.never, message="Name cannot be empty"),
    schema.Field("content", schema.Text(), empty=schema.never, message=CONTENT_MESSAGE),
    schema.Field("objectionHandlers", HANDLERS, empty=schema.never, message=HANDLERS_MESSAGE),
], partial=True)
SCRIPT = schema.reply("Script", {
    "id": schema.Uuid(), "orgId": schema.Uuid(), "name": schema.Text(), "content": schema.Text(),
    "objectionHandlers": HANDLERS, "isDefault": schema.Boolean(), "createdAt": schema.DateTime(),
    "updatedAt": schema.DateTime(),
})


@params.answers(200, {"type": "array", "items": SCRIPT.json_schema()})
async def list_scripts(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await scripts.list_scripts(conn, principal(request).org_id)
    return wire.json_response([wire.to_wire(row) for row in rows])


@params.accepts(body=SCRIPT_CREATE)
@params.answers(201, SCRIPT)
async def create_script(request: web.Request) -> web.Response:
    fields = await params.body(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.create_script(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row), status=201)


@params.answers(200, SCRIPT)
async def get_script(request: web.Request) -> web.Response:
    script_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.get_script(conn, principal(request).org_id, script_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=SCRIPT_UPDATE)
@params.answers(200, SCRIPT)
async def update_script(request: web.Request) -> web.Response:
    script_id = params.path_id(request)
    fields = await params.body(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.update_script(conn, principal(request).org_id, script_id, fields)
    return wire.json_response(wire.to_wire(row))


@params.answers(200, schema.SUCCESS)
async def delete_script(request: web.Request) -> web.Response:
    script_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        await scripts.delete_script(conn, principal(request).org_id, script_id)
    return wire.json_response({"success": True})


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/scripts"
    router.add_get(base, list_scripts)
    router.add_post(base, create_script)
    router.add_get(base + "/{id}", get_script)
    router.add_put(base + "/{id}", update_script)
    router.add_patch(base + "/{id}", update_script)
    router.add_delete(base + "/{id}", delete_script)
