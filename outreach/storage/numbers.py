"""Phone numbers an organization owns (bought on the platform's Twilio account), and the campaign each one serves."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors, policy
from outreach.storage import sql

COLUMNS = "id, org_id, number, label, provider, status, campaign_id, release_after, created_at"


async def list_numbers(conn: asyncpg.Connection, org_id) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM phone_numbers WHERE org_id = $1 ORDER BY created_at DESC, id DESC", org_id
    )
    return sql.as_dicts(rows)


async def get_number(conn: asyncpg.Connection, org_id, number_id, *, lock: bool = False) -> dict:
    return await sql.fetch_owned(conn, "phone_numbers", COLUMNS, number_id, org_id, lock=lock)


async def update_number(conn: asyncpg.Connection, org_id, number_id, fields: dict) -> dict:
    """Apply label and campaign changes; the campaign must belong to the same organization."""
    await get_number(conn, org_id, number_id, lock=True)
    if fields.get("campaign_id"):
        await check_campaign(conn, org_id, fields["campaign_id"])
    return await sql.update_owned(conn, "phone_numbers", COLUMNS, number_id, org_id, fields)


async def check_campaign(conn: asyncpg.Connection, org_id, campaign_id) -> None:
    if not await sql.is_owned(conn, "campaigns", campaign_id, org_id):
        raise errors.Invalid("Campaign not found")


async def lines_for_campaign(conn: asyncpg.Connection, org_id, campaign_id) -> list[dict]:
    """Active numbers to call from: those assigned to the campaign, else the org's unassigned ones."""
    rows = await conn.fetch(
        """SELECT id, number, max_concurrent_calls FROM phone_numbers
           WHERE org_id = $1 AND status = 'active' AND (campaign_id = $2 OR campaign_id IS NULL)
           ORDER BY (campaign_id = $2) DESC NULLS LAST, created_at, id""",
        org_id, campaign_id,
    )
    return sql.as_dicts(rows)


async def reserve_number(conn: asyncpg.Connection, org_id, plan: str, limit: int | None, fields: dict) -> dict:
    """Hold a number for the org as `pending` before it is bought, within the plan's quota of numbers.

    Call inside a transaction. Reservations of one org serialize on a lock, so concurrent purchases cannot
    all pass the quota; a number any organization already holds is a Conflict (the unique number), so it
    is never bought, nor released, on another org's behalf. Raises errors.RateLimited at the quota.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('numbers:' || $1::text))", str(org_id))
    held = await conn.fetchval("SELECT count(*) FROM phone_numbers WHERE org_id = $1", org_id)
    if policy.quota_room(limit, held) == 0:
        raise errors.RateLimited(
            f"Phone number limit reached ({held}/{limit}) on the {plan} plan. Release a number or upgrade the plan.",
            plan=plan, used=held, limit=limit)
    return await create_number(conn, org_id, {**fields, "status": "pending"})


async def activate_number(conn: asyncpg.Connection, org_id, number_id, number: str, provider_sid: str) -> dict:
    """The reservation, bought: active, with Twilio's id for it."""
    return await sql.update_owned(conn, "phone_numbers", COLUMNS, number_id, org_id,
                                  {"number": number, "provider_sid": provider_sid, "status": "active"})


async def drop_reservation(conn: asyncpg.Connection, org_id, number_id) -> None:
    await conn.execute("DELETE FROM phone_numbers WHERE id = $1 AND org_id = $2 AND status = 'pending'",
                       number_id, org_id)


async def held_by_another(conn: asyncpg.Connection, number: str, number_id) -> bool:
    """Whether a row other than this reservation holds the number: then it is never released for this one."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM phone_numbers WHERE number = $1 AND id <> $2)",
                               number, number_id)


async def number_status(conn: asyncpg.Connection, org_id, number: str) -> str | None:
    """The status of the org's number (active, inactive, pending); None when the org has no such number."""
    return await conn.fetchval("SELECT status::text FROM phone_numbers WHERE org_id = $1 AND number = $2",
                               org_id, number)


async def create_number(conn: asyncpg.Connection, org_id, fields: dict) -> dict:
    """Store a number just bought (number, label, provider_sid); active at once."""
    return await sql.insert_owned(conn, "phone_numbers", COLUMNS, org_id, fields)


async def get_provider_number(conn: asyncpg.Connection, org_id, number_id) -> dict:
    """The number with the provider's id for it, which never reaches the wire."""
    return await sql.fetch_owned(conn, "phone_numbers", "id, number, provider, provider_sid", number_id, org_id)


async def delete_number(conn: asyncpg.Connection, org_id, number_id) -> None:
    """Its call logs stay, without the number (the foreign key sets it to null)."""
    await sql.delete_owned(conn, "phone_numbers", number_id, org_id)
