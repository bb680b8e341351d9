"""Script routes: CRUD of the call scripts of an organization."""
from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from aiohttp import web

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal
from outreach.storage import db, scripts


Name = validation.Text(strip=True, min_length=1)
Handlers = validation.Array(validation.Text())


class ScriptCreate(validation.Model):
    name: Annotated[Name, validation.Required()]
    content: Annotated[validation.Text(), validation.Empty()] = ""
    objection_handlers: Annotated[Handlers, validation.Empty(), validation.default([])]


class ScriptUpdate(validation.Model):
    """An update applies only the keys present; null is not text."""

    partial = True
    name: Name = None
    content: validation.Text() = None
    objection_handlers: Handlers = None


class Script(validation.Reply):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    content: str
    objection_handlers: list[str]
    is_default: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime


@params.answers(200, list[Script])
async def list_scripts(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await scripts.list_scripts(conn, principal(request).org_id)
    return wire.json_response([wire.to_wire(row) for row in rows])


@params.accepts(body=ScriptCreate)
@params.answers(201, Script)
async def create_script(request: web.Request) -> web.Response:
    fields = await params.body(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.create_script(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row), status=201)


@params.answers(200, Script)
async def get_script(request: web.Request) -> web.Response:
    script_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.get_script(conn, principal(request).org_id, script_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=ScriptUpdate)
@params.answers(200, Script)
async def update_script(request: web.Request) -> web.Response:
    script_id = params.path_id(request)
    fields = await params.body(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await scripts.update_script(conn, principal(request).org_id, script_id, fields)
    return wire.json_response(wire.to_wire(row))


@params.answers(200, validation.Success)
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
