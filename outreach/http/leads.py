"""Lead routes: search, CRUD and the CSV import."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.runtime import errors, lead_csv, policy
from outreach.runtime.models import LeadStatus
from outreach.storage import db, leads

WIRE_FIELDS = {wire.camel(field): field for field in policy.LEAD_TEXT_FIELDS}


def lead_fields(body: dict, *, creating: bool) -> dict:
    present = {key: column for key, column in WIRE_FIELDS.items() if creating or key in body}
    for key in present:
        params.optional_text(body, key)  # refuses non-text values with a clear message
    fields = lead_csv.clean_lead_fields({column: body.get(key) for key, column in present.items()})
    fields = {column: fields[column] for column in present.values()}
    if not creating and "status" in body:
        fields["status"] = policy.parse_enum(LeadStatus, body["status"], "Invalid status").value
    return fields


async def list_leads(request: web.Request) -> web.Response:
    page = params.page_from(request, 25)
    status = policy.parse_status_filter(LeadStatus, request.query.get("status"))
    search = request.query.get("search", "").strip() or None
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await leads.list_leads(conn, principal(request).org_id, page, search=search, status=status)
    return wire.json_response({"leads": [wire.to_wire(row) for row in rows],
                               "pagination": params.pagination(page, total)})


async def create_lead(request: web.Request) -> web.Response:
    fields = lead_fields(await params.read_json(request), creating=True)
    if not policy.has_contact(fields):
        raise errors.Invalid("At least one contact field is required")
    async with db.connection(request.app[keys.DB]) as conn:
        row = await leads.create_lead(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row), status=201)


async def get_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await leads.get_lead(conn, principal(request).org_id, lead_id)
    return wire.json_response(wire.to_wire(row))


async def update_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    fields = lead_fields(await params.read_json(request), creating=False)
    if not fields:
        raise errors.Invalid("No fields to update")
    org_id = principal(request).org_id
    async with db.transaction(request.app[keys.DB]) as conn:
        current = await leads.get_lead(conn, org_id, lead_id)
        if not policy.has_contact({**current, **fields}):
            raise errors.Invalid("At least one contact field is required")
        row = await leads.update_lead(conn, org_id, lead_id, fields)
    return wire.json_response(wire.to_wire(row))


async def delete_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    async with db.transaction(request.app[keys.DB]) as conn:
        await leads.delete_lead(conn, principal(request).org_id, lead_id)
    return wire.json_response({"success": True})


async def import_leads(request: web.Request) -> web.Response:
    data = await read_csv_upload(request, request.app[keys.SETTINGS].max_import_bytes)
    parsed = lead_csv.parse_leads_csv(data)
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
    raise errors.Invalid("No file provided")


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
