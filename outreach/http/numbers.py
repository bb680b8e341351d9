"""Phone number routes: the org's numbers, one number, and its label and campaign."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.runtime import errors
from outreach.storage import db, numbers


def number_fields(body: dict) -> dict:
    """Only keys present are applied; a falsy label or campaignId clears it."""
    fields: dict = {}
    if "label" in body:
        fields["label"] = params.optional_text(body, "label") if body["label"] else None
    if "campaignId" in body:
        campaign_id = body["campaignId"]
        fields["campaign_id"] = campaign_uuid(campaign_id) if campaign_id else None
    if not fields:
        raise errors.Invalid("No fields to update")
    return fields


def campaign_uuid(value):
    """Not a UUID names no campaign of the org: the same 400 as an unknown or foreign campaign."""
    return params.parse_uuid(value, "Campaign not found", errors.Invalid)


async def list_numbers(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await numbers.list_numbers(conn, principal(request).org_id)
    return wire.json_response({"numbers": [wire.to_wire(row) for row in rows]})


async def get_number(request: web.Request) -> web.Response:
    number_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await numbers.get_number(conn, principal(request).org_id, number_id)
    return wire.json_response(wire.to_wire(row))


async def update_number(request: web.Request) -> web.Response:
    number_id = params.path_id(request)
    fields = number_fields(await params.read_json(request))
    async with db.transaction(request.app[keys.DB]) as conn:
        row = await numbers.update_number(conn, principal(request).org_id, number_id, fields)
    return wire.json_response(wire.to_wire(row))


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/numbers"
    router.add_get(base, list_numbers)
    router.add_get(base + "/{id}", get_number)
    router.add_put(base + "/{id}", update_number)
    router.add_patch(base + "/{id}", update_number)
