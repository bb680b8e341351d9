"""Telegram accounts: a shared pool, each account assigned to at most one organization."""
from __future__ import annotations

import datetime
import zoneinfo

import asyncpg

# The session string is never selected here: it leaves the database only for the account's actor.
COLUMNS = (
    "id, phone, username, display_name, status, daily_message_count, daily_count_day, day_timezone,"
    " max_daily_messages, last_message_at, created_at"
)


def account_today(zone_name: str | None, now: datetime.datetime) -> datetime.date:
    """The calendar day of an account's daily limit: in its own time zone, UTC when that is unknown."""
    try:
        zone = zoneinfo.ZoneInfo(zone_name or "UTC")
    except (ValueError, KeyError, OSError):  # malformed or unknown names; ZoneInfoNotFoundError is a KeyError
        zone = datetime.timezone.utc
    return now.astimezone(zone).date()


def current_daily_count(row: dict, now: datetime.datetime) -> int:
    """A count recorded on an earlier day is stale: the account has sent nothing today."""
    if row["daily_count_day"] != account_today(row["day_timezone"], now):
        return 0
    return row["daily_message_count"]


async def list_org_accounts(conn: asyncpg.Connection, org_id, now: datetime.datetime | None = None) -> list[dict]:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM telegram_accounts WHERE assigned_org_id = $1 ORDER BY created_at DESC, id DESC",
        org_id,
    )
    return [public_account(dict(row), now) for row in rows]


def public_account(row: dict, now: datetime.datetime) -> dict:
    row["daily_message_count"] = current_daily_count(row, now)
    del row["daily_count_day"], row["day_timezone"]
    return row
