"""Lead routes: search, CRUD and the CSV import."""
from __future__ import annotations

import asyncio
import datetime
import io
import tempfile
import uuid
from typing import Annotated

from aiohttp import http_exceptions, web
from pydantic import Field

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal
from outreach.runtime import errors, lead_csv, policy
from outreach.runtime.models import LeadStatus
from outreach.storage import db, lead_import, leads, usage

STATUSES = tuple(status.value for status in LeadStatus)
Status = validation.one_of(STATUSES)


def lead_text(column: str):
    return Annotated[validation.Text(strip=True, max_length=policy.LEAD_TEXT_LIMITS[column]),
                     validation.Empty(validation.blank)]


class LeadCreate(validation.Model):
    """At least one of firstName, lastName, phone, email, telegramUsername."""

    first_name: lead_text("first_name") = None
    last_name: lead_text("last_name") = None
    phone: lead_text("phone") = None
    email: lead_text("email") = None
    telegram_username: lead_text("telegram_username") = None
    company: lead_text("company") = None
    timezone: lead_text("timezone") = None


class LeadUpdate(LeadCreate):
    partial = True
    status: Status = None


class LeadListQuery(params.PageQuery):
    status: params.status_choice(LeadStatus) = None
    search: Annotated[validation.Text(strip=True), validation.Empty(validation.blank), Field(
        description="case-insensitive substring of a name, email, phone, company or Telegram username")] = None


class LeadImport(validation.Model):
    file: Annotated[validation.Binary, Field(description="a UTF-8 CSV file whose name ends in .csv, with a header row")]


class Lead(validation.Reply):
    id: uuid.UUID
    org_id: uuid.UUID
    campaign_id: uuid.UUID | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    email: str | None
    telegram_username: str | None
    company: str | None
    timezone: str | None
    metadata: dict
    status: Status
    created_at: datetime.datetime


class LeadPagination(params.Pagination):
    total_capped: Annotated[bool, Field(description="true when more leads match than `total`, which is then a floor: "
                                        "counting stops past 10,000 matches and past the page asked for")]


class LeadList(validation.Reply):
    leads: list[Lead]
    pagination: LeadPagination


class LeadsImported(validation.Reply):
    success: bool
    imported: int
    total: int
    skipped: int
    duplicates: int
    errors: list[dict]



IMPORT_CHUNK = 5_000  # rows parsed, held and COPYed at a time: the import's memory, whatever the file's length
SPOOL_BYTES = 1024 * 1024  # an upload past this waits on disk, not in memory


def lead_fields(values: dict) -> dict:
    """The model's values, normalized and checked as the CSV import does (a Telegram username loses its @ or t.me
    link, the phone becomes E.164; control characters are refused)."""
    cleaned = lead_csv.clean_lead_fields(values)
    given = {column: cleaned.get(column, value) for column, value in values.items()}
    return lead_csv.checked_lead(given)


async def lead_quota(request: web.Request, conn) -> tuple[str, int | None]:
    return await usage.plan_quota(conn, principal(request).org_id, request.app[keys.SETTINGS].plan_limits, "leads")


@params.accepts(query=LeadListQuery)
@params.answers(200, LeadList)
async def list_leads(request: web.Request) -> web.Response:
    values = params.query(request)
    page = params.page_of(values)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total, capped = await leads.list_leads(conn, principal(request).org_id, page,
                                                     search=values["search"], status=values["status"])
    return wire.json_response({"leads": [wire.to_wire(row) for row in rows],
                               "pagination": {**params.pagination(page, total), "totalCapped": capped}})


@params.accepts(body=LeadCreate)
@params.answers(201, Lead)
async def create_lead(request: web.Request) -> web.Response:
    fields = lead_fields(await params.body(request))
    if not policy.has_contact(fields):
        raise errors.Invalid("At least one contact field is required")
    async with db.transaction(request.app[keys.DB]) as conn:
        row = await leads.create_lead(conn, principal(request).org_id, fields, await lead_quota(request, conn))
    return wire.json_response(wire.to_wire(row), status=201)


@params.answers(200, Lead)
async def get_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await leads.get_lead(conn, principal(request).org_id, lead_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=LeadUpdate)
@params.answers(200, Lead)
async def update_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    fields = lead_fields(await params.body(request))
    if not fields:
        raise errors.Invalid("No fields to update")
    who = principal(request)
    org_id = who.org_id
    if "status" in fields:  # a user's choice: the runtime never changes it afterwards
        fields.update(status_set_by=who.user_id or who.via, status_set_at=datetime.datetime.now(datetime.timezone.utc))
    async with db.transaction(request.app[keys.DB]) as conn:
        current = await leads.get_lead(conn, org_id, lead_id)
        if not policy.has_contact({**current, **fields}):
            raise errors.Invalid("At least one contact field is required")
        row = await leads.update_lead(conn, org_id, lead_id, fields)
    return wire.json_response(wire.to_wire(row))


@params.answers(200, validation.Success)
async def delete_lead(request: web.Request) -> web.Response:
    lead_id = params.path_id(request)
    async with db.transaction(request.app[keys.DB]) as conn:
        await leads.delete_lead(conn, principal(request).org_id, lead_id)
    return wire.json_response({"success": True})


@params.accepts(upload=LeadImport)
@params.answers(200, LeadsImported)
async def import_leads(request: web.Request) -> web.Response:
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as upload:
        await write_csv_upload(request, request.app[keys.SETTINGS].max_import_bytes, upload)
        upload.seek(0)
        with io.TextIOWrapper(upload, encoding="utf-8-sig", newline="") as text:
            reader = await asyncio.to_thread(lead_csv.LeadCsvReader, text)
            async with db.transaction(request.app[keys.DB]) as conn:
                copied, imported = await lead_import.import_chunks(
                    conn, principal(request).org_id, parsed_chunks(reader), await lead_quota(request, conn))
                if not copied:  # raised inside: the transaction keeps nothing
                    raise errors.Invalid("No valid rows found in CSV", details=reader.errors[:100])
    return wire.json_response(import_summary(reader, copied, imported))


async def parsed_chunks(reader: lead_csv.LeadCsvReader):
    """The file's importable rows a chunk at a time, each parsed off the event loop."""
    while chunk := await asyncio.to_thread(reader.next_chunk, IMPORT_CHUNK):
        yield chunk


def import_summary(reader: lead_csv.LeadCsvReader, copied: int, imported: int) -> dict:
    """Rows not imported are skipped: row errors, and duplicates (in the file, or of the org's leads)."""
    return {"success": True, "imported": imported, "total": reader.total, "skipped": reader.total - imported,
            "duplicates": copied - imported, "errors": reader.errors}


async def read_csv_upload(request: web.Request, max_bytes: int) -> bytes:
    """The multipart field `file` in memory (small uploads such as a suppression list)."""
    sink = io.BytesIO()
    await write_csv_upload(request, max_bytes, sink)
    return sink.getvalue()


async def write_csv_upload(request: web.Request, max_bytes: int, sink) -> None:
    """Write the multipart field `file` to `sink`, refusing it past `max_bytes` (413)."""
    if not request.content_type.startswith("multipart/"):
        raise errors.Invalid("Send the CSV as multipart/form-data in a field named file")
    if request.content_length and request.content_length > max_bytes + 64 * 1024:
        raise errors.PayloadTooLarge(f"File too large: the limit is {max_bytes // (1024 * 1024)} MB")
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "file":
                return await read_csv_part(part, max_bytes, sink)
            await part.release()
    except ValueError as exc:  # aiohttp's reader raises ValueError on a malformed body
        raise errors.Invalid(f"Malformed multipart body: {exc}") from None
    except http_exceptions.HttpProcessingError as exc:  # and this on a malformed part header
        raise errors.Invalid(f"Malformed multipart body: {exc.message}") from None
    raise validation.missing(LeadImport, "file")


async def read_csv_part(part, max_bytes: int, sink) -> None:
    if not (part.filename or "").lower().endswith(".csv"):
        raise errors.Invalid("Only CSV files are supported")
    size = 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise errors.PayloadTooLarge(f"File too large: the limit is {max_bytes // (1024 * 1024)} MB")
        sink.write(chunk)


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/leads"
    router.add_get(base, list_leads)
    router.add_post(base, create_lead)
    router.add_post(base + "/import", import_leads)
    router.add_get(base + "/{id}", get_lead)
    router.add_patch(base + "/{id}", update_lead)
    router.add_put(base + "/{id}", update_lead)
    router.add_delete(base + "/{id}", delete_lead)
