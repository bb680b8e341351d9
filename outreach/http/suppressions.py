"""The do-not-contact list of an organization: list, add (one entry or many), remove, CSV import."""
from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import keys, params, validation, wire
from outreach.http.auth import admin_only, principal
from outreach.http.leads import read_csv_upload
from outreach.runtime import errors, optout
from outreach.storage import db, suppressions

MAX_ENTRIES = 1000
ONE_OR_MANY = 'Send one entry {"type", "value"} or {"entries": [{"type", "value"}, ...]}'
Type = validation.one_of(optout.SUPPRESSION_TYPES)
Value = validation.Text(strip=True, min_length=1, max_length=320)


class SuppressionEntry(validation.Model):
    type: Type
    value: Value


class SuppressionAdd(validation.Model):
    """One entry (type and value), or entries. Values are normalised: email lower case, phone E.164, Telegram
    username without @."""

    type: Type | None = None
    value: Value | None = None
    entries: Annotated[validation.Array(SuppressionEntry, min_items=1) | None,
                       Field(description=f"up to {MAX_ENTRIES} entries")] = None


class SuppressionListQuery(params.PageQuery):
    limit: params.PageLimit = 50
    type: Annotated[validation.one_of(("all", *optout.SUPPRESSION_TYPES)),
                    validation.Empty(lambda value: value in (None, "", "all"))] = None
    search: Annotated[validation.Text(strip=True), validation.Empty(validation.blank),
                      Field(description="substring of the value")] = None


class SuppressionImport(validation.Model):
    file: Annotated[validation.Binary, Field(
        description="a UTF-8 CSV: type,value columns, or email, phone and telegram columns")]


class Suppression(validation.Reply):
    id: uuid.UUID
    type: Type
    value: str
    source: validation.one_of(optout.SOURCES)
    created_at: datetime.datetime


class SuppressionList(validation.Reply):
    suppressions: list[Suppression]
    pagination: params.Pagination


class SuppressionsAdded(validation.Reply):
    suppressions: list[Suppression]
    added: int


class SuppressionsImported(validation.Reply):
    success: bool
    imported: int
    total: int
    duplicates: int
    errors: list[dict]


def entry_of(row: dict) -> dict:
    return wire.to_wire({key: row[key] for key in ("id", "type", "value", "source", "created_at")})


@params.accepts(query=SuppressionListQuery)
@params.answers(200, SuppressionList)
async def list_suppressions(request: web.Request) -> web.Response:
    values = params.query(request)
    page = params.page_of(values)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await suppressions.list_suppressions(conn, principal(request).org_id, page,
                                                           kind=values["type"], search=values["search"])
    return wire.json_response({"suppressions": [entry_of(row) for row in rows],
                               "pagination": params.pagination(page, total)})


@params.accepts(body=SuppressionAdd)
@params.answers(201, SuppressionsAdded)
async def add_suppressions(request: web.Request) -> web.Response:
    entries = requested_entries(await params.body(request))
    async with db.transaction(request.app[keys.DB]) as conn:
        rows = await suppressions.add_entries(conn, principal(request).org_id, entries, "manual")
    return wire.json_response({"suppressions": [entry_of(row) for row in rows],
                               "added": sum(row["added"] for row in rows)}, status=201)


def requested_entries(body: dict) -> list[tuple[str, str]]:
    """Normalised (type, value) pairs; the whole request is refused, naming the entry, if one is invalid."""
    single = body["type"] is not None or body["value"] is not None
    if single == (body["entries"] is not None):
        raise errors.Invalid(ONE_OR_MANY)
    if single:
        if body["type"] is None or body["value"] is None:
            raise errors.Invalid("type and value are both required")
        return [(body["type"], optout.normalise(body["type"], body["value"]))]
    if len(body["entries"]) > MAX_ENTRIES:
        raise errors.Invalid(f"At most {MAX_ENTRIES} entries per request")
    normalised = []
    for index, entry in enumerate(body["entries"]):
        try:
            normalised.append((entry["type"], optout.normalise(entry["type"], entry["value"])))
        except errors.Invalid as exc:
            raise errors.Invalid(f"entries[{index}]: {exc.message}") from None
    return normalised


@admin_only  # lifting a do-not-contact entry lets the organization write to that person again
@params.answers(200, validation.Success)
async def delete_suppression(request: web.Request) -> web.Response:
    suppression_id = params.path_id(request)
    async with db.transaction(request.app[keys.DB]) as conn:
        await suppressions.delete_suppression(conn, principal(request).org_id, suppression_id)
    return wire.json_response({"success": True})


@params.accepts(upload=SuppressionImport)
@params.answers(200, SuppressionsImported)
async def import_suppressions(request: web.Request) -> web.Response:
    data = await read_csv_upload(request, request.app[keys.SETTINGS].max_import_bytes)
    entries, total, problems = await asyncio.to_thread(optout.parse_suppression_csv, data)
    if not entries:
        raise errors.Invalid("No valid contacts found in CSV", details=problems[:100])
    async with db.transaction(request.app[keys.DB]) as conn:
        rows = await suppressions.add_entries(conn, principal(request).org_id, entries, "import")
    added = sum(row["added"] for row in rows)
    return wire.json_response({"success": True, "imported": added, "total": total,
                               "duplicates": len(entries) - added, "errors": problems})


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/suppressions"
    router.add_get(base, list_suppressions)
    router.add_post(base, add_suppressions)
    router.add_post(base + "/import", import_suppressions)
    router.add_delete(base + "/{id}", delete_suppression)
