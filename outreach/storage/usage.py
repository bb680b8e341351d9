"""Monthly usage per organization, as counted at send time by whoever sends, and the plan check for sends
made outside a campaign (email/send, number purchase).

A campaign run reserves its batches in runs.reserve_usage. A single send elsewhere calls `reserve` before
the provider call (all or nothing, in one atomic statement) and `release` when the provider did not send,
so usage counts only what was really sent.
"""
from __future__ import annotations

import datetime

import asyncpg

from outreach.runtime import errors, policy
from outreach.storage import runs

CURRENT_MONTH = "date_trunc('month', now() AT TIME ZONE 'UTC')::date"
COLUMN = {"email": "emails", "telegram": "telegram", "voice": "minutes"}
LIMIT_NAME = {"email": "Email", "telegram": "Telegram message", "voice": "Voice minutes"}


async def current_usage(conn: asyncpg.Connection, org_id) -> dict:
    """This UTC month's counters (zeros before the first send) and the organization's stored plan (what it paid
    for, `free` when nothing; policy.plan_in_effect says which plan applies)."""
    row = await conn.fetchrow(
        f"""SELECT o.plan::text AS plan, coalesce(u.minutes, 0) AS minutes,
                   coalesce(u.telegram, 0) AS telegram, coalesce(u.emails, 0) AS emails
            FROM organizations o
            LEFT JOIN usage u ON u.org_id = $1 AND u.month = {CURRENT_MONTH}
            WHERE o.id = $1""",
        org_id,
    )
    if row is None:
        raise errors.NotFound("Organization not found")
    return dict(row)


async def reserve(conn: asyncpg.Connection, org_id, plan_limits: dict | None, channel: str, count: int = 1) -> dict:
    """Count `count` sends on `channel` ("email" or "telegram") against this month's plan limit, all or none.

    Atomic: concurrent reservations serialize on the month's usage row, so the limit never overshoots.
    Raises errors.RateLimited (429, Retry-After until the month resets) when they do not fit. Returns
    {"month", "used", "limit"}; pass "month" back to `release` if the send does not happen.
    """
    if channel not in ("email", "telegram") or count < 1:
        raise ValueError(f"cannot reserve {count} {channel} sends")
    plan, limit = await plan_limit(conn, org_id, plan_limits, channel)
    month, column = runs.month_start(), COLUMN[channel]
    used = None
    if count <= limit:
        used = await conn.fetchval(
            f"""INSERT INTO usage AS u (org_id, month, {column}) VALUES ($1, $2, $3)
                ON CONFLICT (org_id, month) DO UPDATE SET {column} = u.{column} + $3
                WHERE u.{column} + $3 <= $4
                RETURNING {column}""",
            org_id, month, count, limit,
        )
    if used is None:
        raise await limit_reached(conn, org_id, plan, channel, limit)
    return {"month": month, "used": used, "limit": limit}


async def release(conn: asyncpg.Connection, org_id, channel: str, count: int = 1,
                  month: datetime.date | None = None) -> None:
    """Give back sends reserved with `reserve` that the provider did not make."""
    column = COLUMN[channel]
    await conn.execute(
        f"UPDATE usage SET {column} = greatest({column} - $3, 0) WHERE org_id = $1 AND month = $2",
        org_id, month or runs.month_start(), count,
    )


async def check_available(conn: asyncpg.Connection, org_id, plan_limits: dict | None, channel: str) -> None:
    """Raise the same 429 when the channel's monthly limit is used up. For voice (calls, buying a number),
    whose minutes are counted when a call ends: the plan must have minutes left."""
    plan, limit = await plan_limit(conn, org_id, plan_limits, channel)
    if await used_this_month(conn, org_id, channel) >= limit:
        raise await limit_reached(conn, org_id, plan, channel, limit)


async def plan_limit(conn: asyncpg.Connection, org_id, plan_limits: dict | None, channel: str) -> tuple[str, int]:
    """The plan in effect (policy.plan_in_effect: a paid one, else the deployment's default) and its limit."""
    plan = await conn.fetchval("SELECT plan::text FROM organizations WHERE id = $1", org_id)
    if plan is None:
        raise errors.NotFound("Organization not found")
    return policy.plan_in_effect(plan, plan_limits), getattr(policy.limits_for(plan, plan_limits), COLUMN[channel])


async def plan_quota(conn: asyncpg.Connection, org_id, plan_limits: dict | None, field: str) -> tuple[str, int | None]:
    """The org's plan and its quota of `field` ("numbers" or "leads", held at once), by the same rule as the limits."""
    plan = await conn.fetchval("SELECT plan::text FROM organizations WHERE id = $1", org_id)
    if plan is None:
        raise errors.NotFound("Organization not found")
    return policy.plan_in_effect(plan, plan_limits), getattr(policy.limits_for(plan, plan_limits), field)


async def used_this_month(conn: asyncpg.Connection, org_id, channel: str) -> int:
    used = await conn.fetchval(f"SELECT {COLUMN[channel]} FROM usage WHERE org_id = $1 AND month = $2",
                               org_id, runs.month_start())
    return used or 0


async def limit_reached(conn: asyncpg.Connection, org_id, plan: str, channel: str, limit: int) -> errors.RateLimited:
    used = await used_this_month(conn, org_id, channel)
    return errors.RateLimited(
        f"{LIMIT_NAME[channel]} limit reached ({used}/{limit}) on the {plan} plan. Upgrade the plan or wait "
        "for next month.",
        retry_after=seconds_to_next_month(), channel=channel, plan=plan, used=used, limit=limit,
    )


def seconds_to_next_month(now: datetime.datetime | None = None) -> int:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    start = runs.month_start(now)
    following = (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    reset = datetime.datetime.combine(following, datetime.time(), datetime.timezone.utc)
    return max(1, int((reset - now).total_seconds()))
