"""The do-not-contact list of an organization: list, add (one entry or many), remove, CSV import."""
from __future__ import annotations

import asyncio

from aiohttp import web

from outreach.http import keys, params, schema, wire
from outreach.http.auth import principal
from outreach.http.leads import read_csv_upload
from outreach.runtime import errors, optout
from outreach.storage import db, suppressions

MAX_ENTRIES = 1000
TYPE_MESSAGE = f"type must be one of: {', '.join(optout.SUPPRESSION_TYPES)}"
ONE_OR_MANY = 'Send one entry {"type", "value"} or {"entries": [{"type", "value"}, ...]}'
ENTRY = schema.Model("SuppressionEntry", [
    schema.Field("type", schema.Text(enum=optout.SUPPRESSION_TYPES), required=True, empty=schema.never,
                 message=TYPE_MESSAGE),
    schema.Field("value", schema.Text(strip=True, min_length=1, max_length=320), required=True, empty=schema.never,
                 message="value must be a non-empty string of at most 320 characters"),
])
ADD = schema.Model("SuppressionAdd", [
    schema.Field("type", schema.Text(enum=optout.SUPPRESSION_TYPES), message=TYPE_MESSAGE),
    schema.Field("value", schema.Text(strip=True, min_length=1, max_length=320),
                 message="value must be a non-empty string of at most 320 characters"),
    schema.Field("entries", schema.Array(schema.Object(ENTRY), min_items=1),
                 message={"type": "entries must be an array of {type, value}",
                          "length": "entries must not be empty"},
                 description=f"up to {MAX_ENTRIES} entries"),
], description="One entry (type and value), or entries. Values are normalised: email lower case, phone E.164, "
               "Telegram username without @.")
LIST_QUERY = schema.Model("SuppressionListQuery", [
    *params.page_fields(50),
    schema.Field("type", schema.Text(enum=("all", *optout.SUPPRESSION_TYPES)),
                 empty=lambda value: value in (None, "", "all"), message=TYPE_MESSAGE),
    schema.Field("search", schema.Text(strip=True), empty=schema.blank, description="substring of the value"),
], text=True)
IMPORT = schema.Model("SuppressionImport", [
    schema.Field("file", schema.Binary(), required=True, message="No file provided",
                 description="a UTF-8 CSV: type,value columns, or email, phone and telegram columns"),
])
SUPPRESSION = schema.reply("Suppression", {
    "id": schema.Uuid(), "type": schema.Text(enum=optout.SUPPRESSION_TYPES), "value": schema.Text(),
    "source": schema.Text(enum=optout.SOURCES), "createdAt": schema.DateTime(),
})
SUPPRESSION_LIST = schema.reply("SuppressionList", {"suppressions": schema.Array(schema.Object(SUPPRESSION)),
                                                    "pagination": schema.Object(params.PAGINATION)})
ADDED = schema.reply("SuppressionsAdded", {"suppressions": schema.Array(schema.Object(SUPPRESSION)),
                                           "added": schema.Integer()})
IMPORTED = schema.reply("SuppressionsImported", {
    "success": schema.Boolean(), "imported": schema.Integer(), "total": schema.Integer(),
    "duplicates": schema.Integer(), "errors": schema.Array(schema.Object()),
})


def entry_of(row: dict) -> dict:
    return wire.to_wire({key: row[key] for key in ("id", "type", "value", "source", "created_at")})


@params.accepts(query=LIST_QUERY)
@params.answers(200, SUPPRESSION_LIST)
async def list_suppressions(request: web.Request) -> web.Response:
    values = params.query(request)
    page = params.page_of(values)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await suppressions.list_suppressions(conn, principal(request).org_id, page,
                                                           kind=values["type"], search=values["search"])
    return wire.json_response({"suppressions": [entry_of(row) for row in rows],
                               "pagination": params.pagination(page, total)})


@params.accepts(body=ADD)
@params.answers(201, ADDED)
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


@params.answers(200, schema.SUCCESS)
async def delete_suppression(request: web.Request) -> web.Response:
    suppression_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        await suppressions.delete_suppression(conn, principal(request).org_id, suppression_id)
    return wire.json_response({"success": True})


@params.accepts(upload=IMPORT)
@params.answers(200, IMPORTED)
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
