"""Channel configs: one settings document per organization and channel (voice, telegram, email)."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors
from outreach.storage import sql

COLUMNS = "id, org_id, channel, config, status, created_at"


async def list_channel_configs(conn: asyncpg.Connection, org_id) -> list[dict]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM channel_configs WHERE org_id = $1 ORDER BY channel", org_id)
    return sql.as_dicts(rows)


async def save_channel_config(conn: asyncpg.Connection, org_id, channel: str, config: dict,
                              status: str | None) -> dict:
    """Insert or replace the config; the status changes only when one is given. Call inside a transaction."""
    if channel == "email":
        await claim_sender_addresses(conn, org_id, config)
    row = await conn.fetchrow(
        f"""INSERT INTO channel_configs (org_id, channel, config, status)
            VALUES ($1, $2, $3, coalesce($4::channel_config_status, 'active'))
            ON CONFLICT ON CONSTRAINT channel_configs_org_channel_unique
            DO UPDATE SET config = EXCLUDED.config,
                          status = coalesce($4::channel_config_status, channel_configs.status)
            RETURNING {COLUMNS}""",
        org_id, channel, config, status,
    )
    return dict(row)


async def claim_sender_addresses(conn: asyncpg.Connection, org_id, config: dict) -> None:
    """The org's from and reply-to addresses become its own; one another org holds is a conflict."""
    addresses = sorted({str(config[key]).lower() for key in ("fromEmail", "replyTo") if config.get(key)})
    await conn.execute("DELETE FROM sender_addresses WHERE org_id = $1 AND NOT (address = ANY($2::text[]))",
                       org_id, addresses)
    claimed = await conn.fetch(
        """INSERT INTO sender_addresses (address, org_id) SELECT unnest($2::text[]), $1
           ON CONFLICT (address) DO UPDATE SET org_id = sender_addresses.org_id
           RETURNING address, org_id""",
        org_id, addresses,
    )
    if any(row["org_id"] != org_id for row in claimed):
        raise errors.Conflict("This sender address is used by another organization")
