"""Leads: CRUD, search, and the lead quota shared with the bulk import (storage/lead_import.py)."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors, policy, search_terms
from outreach.runtime.models import Page
from outreach.storage import search_trigrams, sql

COLUMNS = (
    "id, org_id, campaign_id, first_name, last_name, phone, email, telegram_username, company,"
    " metadata, status, timezone, created_at"
)
EXACT_TOTAL_UP_TO = 10_000  # matches counted exactly; past this (and past the page asked for) the total is capped


def lead_filter(org_id, search: str | None, status: str | None, common: frozenset[str] = frozenset()):
    """The WHERE clause and its arguments, holding only the conditions given, so every plan is the one that fits
    (a `$n IS NULL OR ...` arm keeps a generic plan off the trigram index). The index is asked for the term's
    stretch without `common` trigrams; the whole term is checked on what it finds, through an expression
    (`search_text || ''`) the planner cannot hand to the index."""
    clauses, args = ["org_id = $1"], [org_id]
    if status:
        args.append(status)
        clauses.append(f"status = ${len(args)}")
    if search:
        stretch = search_terms.index_stretch(search, common)
        args.append(f"%{sql.escape_like(stretch)}%")
        clauses.append(f"search_text ILIKE ${len(args)}")
    if search and stretch != search:
        args.append(f"%{sql.escape_like(search)}%")
        clauses.append(f"(search_text || '') ILIKE ${len(args)}")
    return " AND ".join(clauses), args


async def list_leads(conn: asyncpg.Connection, org_id, page: Page, *, search: str | None, status: str | None):
    """One page, newest first, with the number of matches and whether that number is a floor: counting stops
    past max(EXACT_TOTAL_UP_TO, the end of this page), so a total over a million leads costs what 10,000 do."""
    common = await search_trigrams.common_trigrams(conn) if search else frozenset()
    where, args = lead_filter(org_id, search, status, common)
    at = len(args)
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM leads WHERE {where} ORDER BY created_at DESC, id DESC"
                            f" LIMIT ${at + 1} OFFSET ${at + 2}", *args, page.limit, page.offset)
    if len(rows) < page.limit and (rows or page.offset == 0):  # the last page: its end is the total
        return sql.as_dicts(rows), page.offset + len(rows), False
    cap = max(EXACT_TOTAL_UP_TO, page.offset + page.limit)
    counted = await conn.fetchval(f"SELECT count(*) FROM (SELECT 1 FROM leads WHERE {where} LIMIT ${at + 1})"
                                  " AS matched", *args, cap + 1)
    return sql.as_dicts(rows), min(counted, cap), counted > cap


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
