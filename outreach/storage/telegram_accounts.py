"""Telegram accounts: a shared pool, each account assigned to at most one organization."""
from __future__ import annotations

import dataclasses
import datetime

import asyncpg

from outreach.runtime import errors, pacing
from outreach.storage import db

# The session is selected only by load_session: it leaves the database only for the account's actor.
COLUMNS = (
    "id, phone, username, display_name, status, daily_message_count, daily_count_day, day_timezone,"
    " max_daily_messages, last_message_at, created_at, warmup_started_on"
)
# What deciding a send needs (runtime.pacing.check_slot).
STATE = ("id, status::text AS status, daily_message_count, daily_count_day, day_timezone, max_daily_messages,"
         " warmup_started_on, flood_wait_until, next_send_at")
INTERNAL = ("daily_count_day", "day_timezone", "warmup_started_on")


async def list_org_accounts(conn: asyncpg.Connection, org_id, now: datetime.datetime | None = None,
                            warmup: pacing.Warmup = pacing.Warmup()) -> list[dict]:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM telegram_accounts WHERE assigned_org_id = $1 ORDER BY created_at DESC, id DESC",
        org_id,
    )
    return [public_account(dict(row), now, warmup) for row in rows]


def public_account(row: dict, now: datetime.datetime, warmup: pacing.Warmup) -> dict:
    """What an operator sees: today's count, today's limit (`effective_daily_limit`, the warm-up ramp) and
    `warming_up` while that ramp is below the configured limit."""
    row["effective_daily_limit"] = pacing.effective_limit(row, now, warmup)
    row["status"] = pacing.shown_status(row, now, warmup)
    row["daily_message_count"] = pacing.sent_today(row, now)
    for column in INTERNAL:
        del row[column]
    return row


@dataclasses.dataclass(frozen=True)
class Capacity:
    """The org's accounts that may send now, fewest sends today first, and when the next of the others may."""

    account_ids: list
    retry_at: datetime.datetime | None


async def org_capacity(conn: asyncpg.Connection, org_id, now: datetime.datetime, warmup: pacing.Warmup) -> Capacity:
    rows = await conn.fetch(f"SELECT {STATE} FROM telegram_accounts WHERE assigned_org_id = $1 AND status = 'active'",
                            org_id)
    ready, later = [], []
    for row in map(dict, rows):
        slot = pacing.check_slot(row, now, warmup)
        if slot.refusal is None:
            ready.append((pacing.sent_today(row, now), str(row["id"]), row["id"]))
        elif slot.retry_at is not None:
            later.append(slot.retry_at)
    return Capacity([account_id for _, _, account_id in sorted(ready)], min(later, default=None))


async def take_daily_slot(conn: asyncpg.Connection, account_id, now: datetime.datetime, warmup: pacing.Warmup,
                          gap) -> pacing.Slot:
    """Count one send against the account's day, under its row lock, if it may send now (status, flood wait,
    today's warm-up limit, its paced next slot); then its next send waits `gap(today's limit)` seconds.
    Run it in a transaction: concurrent campaigns and restarted actors see one count."""
    row = await conn.fetchrow(f"SELECT {STATE} FROM telegram_accounts WHERE id = $1 FOR UPDATE", account_id)
    if row is None:
        return pacing.Slot("Telegram account not found")
    row = dict(row)
    slot = pacing.check_slot(row, now, warmup)
    if slot.refusal is None:
        await conn.execute(
            """UPDATE telegram_accounts SET daily_message_count = $2, daily_count_day = $3, last_message_at = $4,
                                            next_send_at = $5
               WHERE id = $1""",
            account_id, pacing.sent_today(row, now) + 1, pacing.account_today(row["day_timezone"], now), now,
            now + datetime.timedelta(seconds=gap(slot.daily_limit)),
        )
    return slot


async def return_daily_slot(conn: asyncpg.Connection, account_id, now: datetime.datetime) -> None:
    """A send that Telegram refused before delivering does not count."""
    row = await conn.fetchrow("SELECT day_timezone FROM telegram_accounts WHERE id = $1", account_id)
    if row is None:
        return
    await conn.execute(
        """UPDATE telegram_accounts SET daily_message_count = greatest(daily_message_count - 1, 0)
           WHERE id = $1 AND daily_count_day = $2""",
        account_id, pacing.account_today(row["day_timezone"], now),
    )


async def set_flood_wait(conn: asyncpg.Connection, account_id, until: datetime.datetime) -> None:
    await conn.execute("UPDATE telegram_accounts SET flood_wait_until = $2 WHERE id = $1", account_id, until)


async def set_status(conn: asyncpg.Connection, account_id, status: str) -> None:
    await conn.execute("UPDATE telegram_accounts SET status = $2 WHERE id = $1", account_id, status)


async def active_campaign_settings(conn: asyncpg.Connection, campaign_id) -> dict | None:
    """The settings of the campaign asking for a send (its sending window paces the account), None unless it
    is active."""
    settings = await conn.fetchval("SELECT settings FROM campaigns WHERE id = $1 AND status = 'active'", campaign_id)
    return settings


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
    """Store a logged-in account; logging in again replaces the session and keeps its organization.

    An account stored `active` starts its warm-up on its first active day (kept when it logs in again)."""
    row = await conn.fetchrow(
        f"""INSERT INTO telegram_accounts (phone, session, username, display_name, status, max_daily_messages,
                                           warmup_started_at, warmup_started_on)
            VALUES ($1, $2, $3, $4, $5::telegram_account_status, coalesce($6, 10),
                    CASE WHEN $5::telegram_account_status = 'warming_up' THEN now() END,
                    CASE WHEN $5::telegram_account_status = 'active' THEN (now() AT TIME ZONE 'UTC')::date END)
            ON CONFLICT (phone) DO UPDATE SET
                session = EXCLUDED.session, username = EXCLUDED.username, display_name = EXCLUDED.display_name,
                status = EXCLUDED.status,
                max_daily_messages = coalesce($6, telegram_accounts.max_daily_messages),
                warmup_started_at = CASE WHEN $5::telegram_account_status = 'warming_up'
                                         THEN coalesce(telegram_accounts.warmup_started_at, now()) END,
                warmup_started_on = coalesce(telegram_accounts.warmup_started_on, EXCLUDED.warmup_started_on)
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


async def list_all_accounts(conn: asyncpg.Connection, now: datetime.datetime | None = None,
                            warmup: pacing.Warmup = pacing.Warmup()) -> list[dict]:
    """Every account in the pool with its organization, for operators; sessions stay in the database."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    rows = await conn.fetch(
        f"""SELECT {", ".join(f"a.{column.strip()}" for column in COLUMNS.split(","))}, a.flood_wait_until,
                   a.session = '{SANDBOX_SESSION}' AS sandbox, o.id AS org_id, o.name AS org_name
            FROM telegram_accounts a LEFT JOIN organizations o ON o.id = a.assigned_org_id
            ORDER BY a.created_at, a.id"""
    )
    return [public_account(dict(row), now, warmup) for row in rows]


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


class PgAccountState:
    """What a TelegramAccount actor reads and writes (its AccountStore), over PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def active_campaign_settings(self, campaign_id) -> dict | None:
        async with db.connection(self.pool) as conn:
            return await active_campaign_settings(conn, campaign_id)

    async def take_daily_slot(self, account_id, now: datetime.datetime, warmup: pacing.Warmup, gap) -> pacing.Slot:
        async with db.transaction(self.pool) as conn:
            return await take_daily_slot(conn, account_id, now, warmup, gap)

    async def return_daily_slot(self, account_id, now: datetime.datetime) -> None:
        async with db.connection(self.pool) as conn:
            await return_daily_slot(conn, account_id, now)

    async def set_flood_wait(self, account_id, until: datetime.datetime) -> None:
        async with db.connection(self.pool) as conn:
            await set_flood_wait(conn, account_id, until)

    async def set_status(self, account_id, status: str) -> None:
        async with db.connection(self.pool) as conn:
            await set_status(conn, account_id, status)
