"""Leads: CRUD, search, and the bulk CSV import."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors
from outreach.runtime.models import Page
from outreach.runtime.policy import LEAD_TEXT_FIELDS
from outreach.storage import sql

COLUMNS = (
    "id, org_id, campaign_id, first_name, last_name, phone, email, telegram_username, company,"
    " metadata, status, timezone, created_at"
)
FILTER = "org_id = $1 AND ($2::lead_status IS NULL OR status = $2) AND ($3::text IS NULL OR search_text ILIKE $3)"


async def list_leads(conn: asyncpg.Connection, org_id, page: Page, *, search: str | None, status: str | None):
    pattern = f"%{sql.escape_like(search)}%" if search else None
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM leads WHERE {FILTER} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
        org_id, status, pattern, page.limit, page.offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM leads WHERE {FILTER}", org_id, status, pattern)
    return sql.as_dicts(rows), total


async def create_lead(conn: asyncpg.Connection, org_id, fields: dict) -> dict:
    return await sql.insert_owned(conn, "leads", COLUMNS, org_id, fields)


async def get_lead(conn: asyncpg.Connection, org_id, lead_id) -> dict:
    return await sql.fetch_owned(conn, "leads", COLUMNS, lead_id, org_id)


async def update_lead(conn: asyncpg.Connection, org_id, lead_id, fields: dict) -> dict:
    return await sql.update_owned(conn, "leads", COLUMNS, lead_id, org_id, fields)


async def delete_lead(conn: asyncpg.Connection, org_id, lead_id) -> None:
    """Call inside a transaction: the lock makes a concurrent claim wait, or this wait for the claim."""
    states = await conn.fetch(
        "SELECT state FROM campaign_leads WHERE lead_id = $1 AND org_id = $2 FOR UPDATE", lead_id, org_id
    )
    if any(row["state"] == "in_progress" for row in states):
        raise errors.Conflict("Lead is being contacted right now. Try again when the attempt has finished.")
    await sql.delete_owned(conn, "leads", lead_id, org_id)


IMPORT_INSERT = f"""
INSERT INTO leads (org_id, {", ".join(LEAD_TEXT_FIELDS)})
SELECT $1, {", ".join("r." + field for field in LEAD_TEXT_FIELDS)}
FROM lead_import r
WHERE NOT (r.email IS NOT NULL AND EXISTS (
          SELECT 1 FROM leads l WHERE l.org_id = $1 AND lower(l.email) = lower(r.email) AND l.email IS NOT NULL))
  AND NOT (r.phone IS NOT NULL AND EXISTS (
          SELECT 1 FROM leads l WHERE l.org_id = $1 AND l.phone = r.phone AND l.phone IS NOT NULL))
  AND NOT (r.telegram_username IS NOT NULL AND EXISTS (
          SELECT 1 FROM leads l WHERE l.org_id = $1 AND lower(l.telegram_username) = lower(r.telegram_username)
                 AND l.telegram_username IS NOT NULL))
ORDER BY r.row_number
"""


IMPORT_CHUNK = 10_000


async def import_leads(conn: asyncpg.Connection, org_id, rows: list[dict], on_progress=None) -> int:
    """Insert rows that do not match an existing lead of the org; return how many were inserted.

    Call inside a transaction. Rows go through COPY into a staging table (in chunks, calling
    `on_progress(rows_copied)` after each), then one INSERT ... SELECT skips those whose email (any
    case), phone or Telegram username the org already has.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1::text))", str(org_id))
    await conn.execute(
        "CREATE TEMP TABLE lead_import (row_number integer, "
        + ", ".join(f"{field} text" for field in LEAD_TEXT_FIELDS)
        + ") ON COMMIT DROP"
    )
    for start in range(0, len(rows), IMPORT_CHUNK):
        chunk = rows[start:start + IMPORT_CHUNK]
        records = [(row["row_number"], *(row.get(field) for field in LEAD_TEXT_FIELDS)) for row in chunk]
        await conn.copy_records_to_table("lead_import", records=records)
        if on_progress is not None:
            on_progress(start + len(chunk))
    status = await conn.execute(IMPORT_INSERT, org_id)
    if len(rows) >= 10_000:
        await conn.execute("ANALYZE leads")  # plans cached on an emptier table would scan it whole
    return int(status.split()[-1])
