"""Campaigns and their lead assignments."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors
from outreach.runtime.models import Page
from outreach.storage import leads, sql

COLUMNS = (
    "id, org_id, name, script_id, voice_config_id, status, channels, channel_priority,"
    " scheduled_at, settings, created_at, updated_at, status_reason"
)


async def list_campaigns(conn: asyncpg.Connection, org_id, page: Page, status: str | None):
    rows = await conn.fetch(
        f"""SELECT {COLUMNS},
                   (SELECT count(*) FROM leads l WHERE l.campaign_id = c.id AND l.org_id = c.org_id)::int AS lead_count
            FROM campaigns c
            WHERE org_id = $1 AND ($2::campaign_status IS NULL OR status = $2)
            ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4""",
        org_id, status, page.limit, page.offset,
    )
    total = await conn.fetchval(
        "SELECT count(*) FROM campaigns WHERE org_id = $1 AND ($2::campaign_status IS NULL OR status = $2)",
        org_id, status,
    )
    return sql.as_dicts(rows), total


async def create_campaign(conn: asyncpg.Connection, org_id, fields: dict) -> dict:
    if fields.get("script_id"):
        await check_script(conn, org_id, fields["script_id"])
    return await sql.insert_owned(conn, "campaigns", COLUMNS, org_id, fields)


async def get_campaign(conn: asyncpg.Connection, org_id, campaign_id, *, lock: bool = False,
                       missing: str = "Not found") -> dict:
    return await sql.fetch_owned(conn, "campaigns", COLUMNS, campaign_id, org_id, lock=lock, missing=missing)


async def lead_stats(conn: asyncpg.Connection, org_id, campaign_id) -> dict:
    row = await conn.fetchrow(
        """SELECT count(*)::int AS total,
                  count(*) FILTER (WHERE status = 'contacted')::int AS contacted,
                  count(*) FILTER (WHERE status = 'qualified')::int AS qualified,
                  count(*) FILTER (WHERE status = 'converted')::int AS converted,
                  count(*) FILTER (WHERE status = 'rejected')::int AS rejected
           FROM leads WHERE campaign_id = $1 AND org_id = $2""",
        campaign_id, org_id,
    )
    return dict(row)


async def update_campaign(conn: asyncpg.Connection, org_id, campaign_id, fields: dict) -> dict:
    if not fields:
        return await get_campaign(conn, org_id, campaign_id)
    if fields.get("script_id"):
        await check_script(conn, org_id, fields["script_id"])
    if "status" in fields:  # a user's decision (start, pause, ...) replaces the reason a run stopped with
        fields = {**fields, "status_reason": None}
    return await sql.update_owned(conn, "campaigns", COLUMNS, campaign_id, org_id, fields, touch=True)


async def set_status(conn: asyncpg.Connection, org_id, campaign_id, status: str, *, only_from: tuple[str, ...]):
    """Change the status only from the given ones; None when the campaign is in another status."""
    row = await conn.fetchrow(
        f"""UPDATE campaigns SET status = $3, status_reason = NULL, updated_at = now()
            WHERE id = $1 AND org_id = $2 AND status = ANY($4::campaign_status[]) RETURNING {COLUMNS}""",
        campaign_id, org_id, status, list(only_from),
    )
    return dict(row) if row else None


async def set_status_reason(conn: asyncpg.Connection, campaign_id, reason: str | None) -> None:
    """Why the run stopped by itself (a plan limit, missing configuration, ...); a user's status change clears it."""
    await conn.execute("UPDATE campaigns SET status_reason = $2 WHERE id = $1", campaign_id, reason)


async def delete_campaign(conn: asyncpg.Connection, org_id, campaign_id) -> None:
    campaign = await get_campaign(conn, org_id, campaign_id, lock=True)
    if campaign["status"] == "active":
        raise errors.Conflict("Campaign is running. Pause it before deleting it.")
    await sql.delete_owned(conn, "campaigns", campaign_id, org_id)


async def check_script(conn: asyncpg.Connection, org_id, script_id) -> None:
    if not await sql.is_owned(conn, "scripts", script_id, org_id):
        raise errors.Invalid("Script not found")


async def assign_leads(conn: asyncpg.Connection, org_id, campaign_id, lead_ids: list) -> int:
    """Move leads into this campaign; a lead still pending in another running campaign is a conflict."""
    await get_campaign(conn, org_id, campaign_id, lock=True, missing="Campaign not found")
    busy = await conn.fetchval(
        """SELECT count(*) FROM leads l
           JOIN campaigns c ON c.id = l.campaign_id AND c.status = 'active'
           JOIN campaign_leads cl ON cl.campaign_id = l.campaign_id AND cl.lead_id = l.id
                AND cl.state IN ('pending', 'in_progress')
           WHERE l.org_id = $1 AND l.id = ANY($2::uuid[]) AND l.campaign_id <> $3""",
        org_id, lead_ids, campaign_id,
    )
    if busy:
        raise errors.Conflict(f"{busy} lead(s) are still pending in another running campaign")
    moved = await conn.fetch(
        "UPDATE leads SET campaign_id = $3 WHERE org_id = $1 AND id = ANY($2::uuid[]) RETURNING id",
        org_id, lead_ids, campaign_id,
    )
    ids = [row["id"] for row in moved]
    if not ids:
        raise errors.Invalid("No valid leads found to assign")
    await conn.execute(
        "DELETE FROM campaign_leads WHERE lead_id = ANY($1::uuid[]) AND campaign_id <> $2 AND state = 'pending'",
        ids, campaign_id,
    )
    await conn.execute(
        """INSERT INTO campaign_leads (campaign_id, lead_id, org_id)
           SELECT $1, unnest($2::uuid[]), $3 ON CONFLICT DO NOTHING""",
        campaign_id, ids, org_id,
    )
    return len(ids)


async def unassign_leads(conn: asyncpg.Connection, org_id, campaign_id, lead_ids: list) -> int:
    await get_campaign(conn, org_id, campaign_id, lock=True, missing="Campaign not found")
    removed = await conn.fetch(
        """UPDATE leads SET campaign_id = NULL
           WHERE org_id = $1 AND campaign_id = $2 AND id = ANY($3::uuid[]) RETURNING id""",
        org_id, campaign_id, lead_ids,
    )
    ids = [row["id"] for row in removed]
    await conn.execute(
        "DELETE FROM campaign_leads WHERE campaign_id = $1 AND lead_id = ANY($2::uuid[]) AND state = 'pending'",
        campaign_id, ids,
    )
    return len(ids)


async def list_campaign_leads(conn: asyncpg.Connection, org_id, campaign_id, page: Page):
    await get_campaign(conn, org_id, campaign_id, missing="Campaign not found")
    rows = await conn.fetch(
        f"""SELECT {leads.COLUMNS} FROM leads WHERE campaign_id = $1 AND org_id = $2
            ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4""",
        campaign_id, org_id, page.limit, page.offset,
    )
    total = await conn.fetchval("SELECT count(*) FROM leads WHERE campaign_id = $1 AND org_id = $2", campaign_id, org_id)
    return sql.as_dicts(rows), total
