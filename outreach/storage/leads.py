"""Leads: CRUD, search, and the lead quota shared with the bulk import (storage/lead_import.py)."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors, policy
from outreach.runtime.models import Page
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


async def create_lead(conn: asyncpg.Connection, org_id, fields: dict, quota: tuple = (None, None)) -> dict:
    """Call inside a transaction when `quota` (plan, the org's lead limit or None) limits the org."""
    plan, limit = quota
    if policy.quota_room(limit, 0) is not None:
        held = await lock_for_quota(conn, org_id, limit)
        if held >= limit:
            raise quota_reached(plan, limit, held, 1)
    return await sql.insert_owned(conn, "leads", COLUMNS, org_id, fields)


async def lock_for_quota(conn: asyncpg.Connection, org_id, limit: int | None) -> int | None:
    """Take the org's lead lock (creates and imports of one org serialize on it) and count its leads when a
    limit applies; None when the org has no lead limit. Call inside a transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1::text))", str(org_id))
    if policy.quota_room(limit, 0) is None:
        return None
    return await conn.fetchval("SELECT count(*) FROM leads WHERE org_id = $1", org_id)


def quota_reached(plan: str, limit: int, held: int, adding: int) -> errors.RateLimited:
    return errors.RateLimited(
        f"Lead limit reached: the {plan} plan keeps up to {limit:,} leads and the organization has {held:,}"
        + (f"; this import would add {adding:,}" if adding > 1 else "") + ". Delete leads or upgrade the plan.",
        plan=plan, used=held, limit=limit)


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
