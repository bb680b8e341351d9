"""Telegram accounts: a shared pool, each account assigned to at most one organization."""
from __future__ import annotations

import datetime
import zoneinfo

import asyncpg

from outreach.runtime import errors
from outreach.storage import db

# The session is selected only by load_session: it leaves the database only for the account's actor.
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


TODAY = "(now() AT TIME ZONE day_timezone)::date"


async def accounts_by_load(conn: asyncpg.Connection, org_id) -> list:
    """The org's accounts that can send now, the one with the fewest sends today first."""
    rows = await conn.fetch(
        f"""SELECT id FROM telegram_accounts
            WHERE assigned_org_id = $1 AND status = 'active'
              AND (flood_wait_until IS NULL OR flood_wait_until <= now())
              AND (daily_count_day IS DISTINCT FROM {TODAY} OR daily_message_count < max_daily_messages)
            ORDER BY CASE WHEN daily_count_day = {TODAY} THEN daily_message_count ELSE 0 END, id""",
        org_id,
    )
    return [row["id"] for row in rows]


async def take_daily_slot(conn: asyncpg.Connection, account_id) -> str | None:
    """Count one send against the account's day, atomically; None when allowed, else why not."""
    taken = await conn.fetchval(
        f"""UPDATE telegram_accounts
            SET daily_message_count = CASE WHEN daily_count_day = {TODAY} THEN daily_message_count + 1 ELSE 1 END,
                daily_count_day = {TODAY}, last_message_at = now()
            WHERE id = $1 AND status = 'active' AND (flood_wait_until IS NULL OR flood_wait_until <= now())
              AND (daily_count_day IS DISTINCT FROM {TODAY} OR daily_message_count < max_daily_messages)
            RETURNING daily_message_count""",
        account_id,
    )
    if taken is not None:
        return None
    row = await conn.fetchrow("SELECT status::text, flood_wait_until > now() AS waiting FROM telegram_accounts WHERE id = $1",
                              account_id)
    if row is None:
        return "Telegram account not found"
    if row["status"] != "active":
        return f"Telegram account is {row['status']}"
    return "Telegram account is waiting out a flood limit" if row["waiting"] else "Telegram account daily limit reached"


async def return_daily_slot(conn: asyncpg.Connection, account_id) -> None:
    """A send that Telegram refused before delivering does not count."""
    await conn.execute(
        f"""UPDATE telegram_accounts SET daily_message_count = greatest(daily_message_count - 1, 0)
            WHERE id = $1 AND daily_count_day = {TODAY}""",
        account_id,
    )


async def set_flood_wait(conn: asyncpg.Connection, account_id, seconds: int) -> None:
    await conn.execute(
        "UPDATE telegram_accounts SET flood_wait_until = now() + make_interval(secs => $2) WHERE id = $1",
        account_id, seconds,
    )


async def set_status(conn: asyncpg.Connection, account_id, status: str) -> None:
    await conn.execute("UPDATE telegram_accounts SET status = $2 WHERE id = $1", account_id, status)


# --- onboarding (the `outreach telegram` commands) -------------------------------------------------

SANDBOX_SESSION = "sandbox"  # simulated accounts (demos, benchmarks) carry this instead of a session
PHONE_CHARACTERS = frozenset("+0123456789 -()")


def normalize_phone(phone: str) -> str:
    """`+380 50 123-45-67` and `380501234567` are one account: `+` and the digits. Anything else
    (a sandbox label, an id) is left as it is."""
    phone = phone.strip()
    if not phone or not PHONE_CHARACTERS.issuperset(phone):
        return phone
    return "+" + "".join(char for char in phone if char.isdigit())


async def save_login(conn: asyncpg.Connection, phone: str, encrypted_session: str, username: str | None,
                     display_name: str, status: str, max_daily_messages: int | None) -> dict:
    """Store a logged-in account; logging in again replaces the session and keeps its organization."""
    row = await conn.fetchrow(
        f"""INSERT INTO telegram_accounts (phone, session, username, display_name, status, max_daily_messages,
                                           warmup_started_at)
            VALUES ($1, $2, $3, $4, $5::telegram_account_status, coalesce($6, 10),
                    CASE WHEN $5::telegram_account_status = 'warming_up' THEN now() END)
            ON CONFLICT (phone) DO UPDATE SET
                session = EXCLUDED.session, username = EXCLUDED.username, display_name = EXCLUDED.display_name,
                status = EXCLUDED.status,
                max_daily_messages = coalesce($6, telegram_accounts.max_daily_messages),
                warmup_started_at = CASE WHEN $5::telegram_account_status = 'warming_up'
                                         THEN coalesce(telegram_accounts.warmup_started_at, now()) END
            RETURNING {COLUMNS}, assigned_org_id""",
        normalize_phone(phone), encrypted_session, username, display_name, status, max_daily_messages,
    )
    return dict(row)


async def assign_account(conn: asyncpg.Connection, account: str, org: str) -> dict:
    """Give the account (id or phone) to the organization (id, or a self-hosted organization's name)."""
    org_row = await conn.fetchrow(
        """SELECT id, name FROM organizations WHERE id::text = lower($1) OR (kind = 'local' AND name = $1)
           ORDER BY id::text = lower($1) DESC LIMIT 1""",
        org.strip(),
    )
    if org_row is None:
        raise errors.NotFound(f"Organization not found: {org}")
    row = await conn.fetchrow(
        """UPDATE telegram_accounts SET assigned_org_id = $3
           WHERE id::text = lower($1) OR phone = $1 OR phone = $2 RETURNING id, phone""",
        account.strip(), normalize_phone(account), org_row["id"],
    )
    if row is None:
        raise errors.NotFound(f"Telegram account not found: {account}")
    return {**dict(row), "org_id": org_row["id"], "org_name": org_row["name"]}


async def list_all_accounts(conn: asyncpg.Connection, now: datetime.datetime | None = None) -> list[dict]:
    """Every account in the pool with its organization, for operators; sessions stay in the database."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    rows = await conn.fetch(
        f"""SELECT {", ".join(f"a.{column.strip()}" for column in COLUMNS.split(","))}, a.flood_wait_until,
                   a.session = '{SANDBOX_SESSION}' AS sandbox, o.id AS org_id, o.name AS org_name
            FROM telegram_accounts a LEFT JOIN organizations o ON o.id = a.assigned_org_id
            ORDER BY a.created_at, a.id"""
    )
    return [public_account(dict(row), now) for row in rows]


async def load_session(conn: asyncpg.Connection, account_id) -> str | None:
    """The account's encrypted session, for its actor alone; None when it has none (a sandbox account)."""
    session = await conn.fetchval("SELECT session FROM telegram_accounts WHERE id = $1", account_id)
    return None if session in (None, "", SANDBOX_SESSION) else session


PEER_LIFETIME_DAYS = 30  # a username can change hands: resolve it again after this long


class PgPeers:
    """One account's resolved usernames in PostgreSQL (the TelethonSender's `peers`)."""

    def __init__(self, pool: asyncpg.Pool, account_id):
        self.pool = pool
        self.account_id = account_id

    async def get(self, username: str) -> tuple[int, int] | None:
        async with db.connection(self.pool) as conn:
            row = await conn.fetchrow(
                """SELECT user_id, access_hash FROM telegram_peers
                   WHERE account_id = $1 AND username = $2 AND resolved_at > now() - make_interval(days => $3)""",
                self.account_id, username, PEER_LIFETIME_DAYS,
            )
        return (row["user_id"], row["access_hash"]) if row else None

    async def put(self, username: str, user_id: int, access_hash: int) -> None:
        async with db.connection(self.pool) as conn:
            await conn.execute(
                """INSERT INTO telegram_peers (account_id, username, user_id, access_hash) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (account_id, username) DO UPDATE
                   SET user_id = EXCLUDED.user_id, access_hash = EXCLUDED.access_hash, resolved_at = now()""",
                self.account_id, username, user_id, access_hash,
            )
