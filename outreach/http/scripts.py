"""Script routes: CRUD of the call scripts of an organization."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.runtime import errors
from outreach.storage import db, scripts


def script_fields(body: dict, *, creating: bool) -> dict:
    """Validated columns from a create or update body; on update only keys present are applied."""
    fields: dict = {}
    if creating or "name" in body:
        message = "Name is required" if creating else "Name cannot be empty"
        fields["name"] = params.required_name(body, message=message)
    if creating or "content" in body:
        fields["content"] = parse_content(body.get("content"), creating=creating)
    if creating or "objectionHandlers" in body:
        fields["objection_handlers"] = parse_handlers(body.get("objectionHandlers"), creating=creating)
    return fields


def parse_content(value, *, creating: bool) -> str:
    """Text as given; on create a missing or null content is empty."""
    if value is None and creating:
        return ""
    if not isinstance(value, str):
        raise errors.Invalid("content must be a string")
    return value


def parse_handlers(value, *, creating: bool) -> list[str]:
    if value is None and creating:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise errors.Invalid("objectionHandlers must be an array of strings")
    return value


async def list_scripts(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await scripts.list_scripts(conn, principal(request).org_id)
    return wire.json_response([wire.to_wire(row) for row in rows])


async def create_script(request: web.Request) -> web.Response:
    fields = script_fields(await params.read_json(request), creating=True)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.create_script(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row), status=201)


async def get_script(request: web.Request) -> web.Response:
    script_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.get_script(conn, principal(request).org_id, script_id)
    return wire.json_response(wire.to_wire(row))


async def update_script(request: web.Request) -> web.Response:
    script_id = params.path_id(request)
    fields = script_fields(await params.read_json(request), creating=False)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.update_script(conn, principal(request).org_id, script_id, fields)
    return wire.json_response(wire.to_wire(row))


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
