"""Lead routes: search, CRUD and the CSV import."""
from __future__ import annotations

import asyncio

from aiohttp import http_exceptions, web

from outreach.http import keys, params, schema, wire
from outreach.http.auth import principal
from outreach.runtime import errors, lead_csv, policy
from outreach.runtime.models import LeadStatus
from outreach.storage import db, leads

WIRE_FIELDS = {wire.camel(field): field for field in policy.LEAD_TEXT_FIELDS}
STATUSES = tuple(status.value for status in LeadStatus)
LEAD_TEXT = [schema.Field(key, schema.Text(strip=True, max_length=policy.LEAD_TEXT_LIMITS[column]), empty=schema.blank,
                          column=column) for key, column in WIRE_FIELDS.items()]
LEAD_CREATE = schema.Model("LeadCreate", LEAD_TEXT,
                           description="At least one of firstName, lastName, phone, email, telegramUsername.")
LEAD_UPDATE = schema.Model("LeadUpdate", [
    *LEAD_TEXT,
    schema.Field("status", schema.Text(enum=STATUSES), empty=schema.never, message="Invalid status"),
], partial=True)
LIST_QUERY = schema.Model("LeadListQuery", [
    *params.page_fields(25),
    params.status_filter(LeadStatus),
    schema.Field("search", schema.Text(strip=True), empty=schema.blank,
                 description="case-insensitive substring of a name, email, phone, company or Telegram username"),
], text=True)
IMPORT = schema.Model("LeadImport", [
    schema.Field("file", schema.Binary(), required=True, message="No file provided",
                 description="a UTF-8 CSV file whose name ends in .csv, with a header row"),
])

LEAD = schema.reply("Lead", {
    "id": schema.Uuid(), "orgId": schema.Uuid(), "campaignId": schema.Uuid(),
    **{key: schema.Text() for key in WIRE_FIELDS}, "metadata": schema.Object(),
    "status": schema.Text(enum=STATUSES), "createdAt": schema.DateTime(),
}, ("campaignId", *WIRE_FIELDS))
LEAD_LIST = schema.reply("LeadList", {"leads": schema.Array(schema.Object(LEAD)),
                                      "pagination": schema.Object(params.PAGINATION)})
IMPORTED = schema.reply("LeadsImported", {
    "success": schema.Boolean(), "imported": schema.Integer(), "total": schema.Integer(),
    "skipped": schema.Integer(), "duplicates": schema.Integer(), "errors": schema.Array(schema.Object()),
})


def lead_fields(values: dict) -> dict:
    """The model's values, normalized as the CSV import normalizes them (a Telegram username loses its @)."""
    cleaned = lead_csv.clean_lead_fields(values)
    return {column: cleaned.get(column, value) for column, value in values.items()}


@params.accepts(query=LIST_QUERY)
@params.answers(200, LEAD_LIST)
async def list_leads(request: web.Request) -> web.Response:
    values = params.query(request)
    page = params.page_of(values)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await leads.list_leads(conn, principal(request).org_id, page, search=values["search"],
                                             status=values["status"])
    return wire.json_response({"leads": [wire.to_wire(row) for row in rows],
                               "pagination": params.pagination(page, total)})


@params.accepts(body=LEAD_CREATE)
@params.answers(201, LEAD)
async def create_lead(request: web.Request) -> web.Response:
    fields = lead_fields(await params.body(request))
    if not policy.has_contact(fields):
        raise errors.Invalid("At least one contact field is required")
    async with db.connection(request.app[keys.DB]) as conn:
        row = await leads.create_lead(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row), status=201)


@params.answers(200, LEAD)
async def get_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await leads.get_lead(conn, principal(request).org_id, lead_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=LEAD_UPDATE)
@params.answers(200, LEAD)
async def update_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    fields = lead_fields(await params.body(request))
    if not fields:
        raise errors.Invalid("No fields to update")
    org_id = principal(request).org_id
    async with db.transaction(request.app[keys.DB]) as conn:
        current = await leads.get_lead(conn, org_id, lead_id)
        if not policy.has_contact({**current, **fields}):
            raise errors.Invalid("At least one contact field is required")
        row = await leads.update_lead(conn, org_id, lead_id, fields)
    return wire.json_response(wire.to_wire(row))


@params.answers(200, schema.SUCCESS)
async def delete_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    async with db.transaction(request.app[keys.DB]) as conn:
        await leads.delete_lead(conn, principal(request).org_id, lead_id)
    return wire.json_response({"success": True})


@params.accepts(upload=IMPORT)
@params.answers(200, IMPORTED)
async def import_leads(request: web.Request) -> web.Response:
    data = await read_csv_upload(request, request.app[keys.SETTINGS].max_import_bytes)
    parsed = await asyncio.to_thread(lead_csv.parse_leads_csv, data)  # up to 20 MB: off the event loop
    if not parsed.rows and not parsed.duplicates:
        raise errors.Invalid("No valid rows found in CSV", details=parsed.errors[:100])
    async with db.transaction(request.app[keys.DB]) as conn:
        imported = await leads.import_leads(conn, principal(request).org_id, parsed.rows)
    duplicates = parsed.duplicates + len(parsed.rows) - imported
    return wire.json_response({
        "success": True,
        "imported": imported,
        "total": parsed.total,
        "skipped": parsed.total - imported,
        "duplicates": duplicates,
        "errors": parsed.errors[:1000],
    })


async def read_csv_upload(request: web.Request, max_bytes: int) -> bytes:
    if not request.content_type.startswith("multipart/"):
        raise errors.Invalid("Send the CSV as multipart/form-data in a field named file")
    if request.content_length and request.content_length > max_bytes + 64 * 1024:
        raise errors.PayloadTooLarge(f"File too large: the limit is {max_bytes // (1024 * 1024)} MB")
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "file":
                return await read_csv_part(part, max_bytes)
            await part.release()
    except ValueError as exc:  # aiohttp's reader raises ValueError on a malformed body
        raise errors.Invalid(f"Malformed multipart body: {exc}") from None
    except http_exceptions.HttpProcessingError as exc:  # and this on a malformed part header
        raise errors.Invalid(f"Malformed multipart body: {exc.message}") from None
    raise IMPORT.field("file").fail("missing", None)


async def read_csv_part(part, max_bytes: int) -> bytes:
    if not (part.filename or "").lower().endswith(".csv"):
        raise errors.Invalid("Only CSV files are supported")
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data.extend(chunk)
        if len(data) > max_bytes:
            raise errors.PayloadTooLarge(f"File too large: the limit is {max_bytes // (1024 * 1024)} MB")
    return bytes(data)


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/leads"
    router.add_get(base, list_leads)
    router.add_post(base, create_lead)
    router.add_post(base + "/import", import_leads)
    router.add_get(base + "/{id}", get_lead)
    router.add_patch(base + "/{id}", update_lead)
    router.add_put(base + "/{id}", update_lead)
    router.add_delete(base + "/{id}", delete_lead)
