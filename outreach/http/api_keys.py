"""API key routes: list, create (the key is shown once), delete. Keys belong to one organization; managing
them needs an admin. A key records the user who made it (revoked when they leave) and may expire."""
from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import auth, keys, params, validation, wire
from outreach.http.auth import principal
from outreach.runtime import errors
from outreach.storage import api_keys, db

CREATED_FIELDS = ("id", "name", "prefix", "last4", "created_at", "created_by", "expires_at")
EXPIRY_IN_PAST = "expiresAt must be in the future"


class ApiKeyCreate(validation.Model):
    name: Annotated[validation.Text(strip=True, min_length=1), validation.Required()]
    expires_at: Annotated[validation.DateTime, validation.Empty(validation.blank),
                          Field(description="when the key stops working (401 after it); absent: never")] = None


class ApiKeyDeleteQuery(validation.Model):
    """No id names no key: 400. An id that is not a UUID names no key of the org either: the same 404 as a
    foreign id (validation_errors.NOT_FOUND)."""

    textual = True
    id: Annotated[validation.Uuid, validation.Required(validation.blank)]


class ApiKeyCreated(validation.Reply):
    key: str
    id: uuid.UUID
    name: str
    prefix: str
    last4: str
    created_at: datetime.datetime
    created_by: str | None  # keys made on the command line have no creator; most never expire
    expires_at: datetime.datetime | None


class ApiKey(validation.Reply):
    id: uuid.UUID
    name: str
    prefix: str
    last4: str
    created_at: datetime.datetime
    created_by: str | None
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None


class ApiKeyList(validation.Reply):
    keys: list[ApiKey]


@auth.admin_only
@params.answers(200, ApiKeyList)
async def list_api_keys(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await api_keys.list_keys(conn, principal(request).org_id)
    return wire.json_response({"keys": [wire.to_wire(row) for row in rows]})


@auth.admin_only
@params.accepts(body=ApiKeyCreate)
@params.answers(201, ApiKeyCreated)
async def create_api_key(request: web.Request) -> web.Response:
    values = await params.body(request)
    expires_at = values["expires_at"]
    if expires_at is not None and expires_at <= datetime.datetime.now(datetime.timezone.utc):
        raise errors.Invalid(EXPIRY_IN_PAST)
    who = principal(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row, key = await api_keys.create_key(conn, who.org_id, values["name"], who.creator, expires_at)
    shown = {field: row[field] for field in CREATED_FIELDS}
    return wire.json_response({"key": key, **wire.to_wire(shown)}, status=201)


@auth.admin_only
@params.accepts(query=ApiKeyDeleteQuery)
@params.answers(200, validation.Success)
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
