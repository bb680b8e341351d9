"""Channel configs: one settings document per organization and channel (voice, telegram, email)."""
from __future__ import annotations

import asyncpg

from outreach.storage import email_senders, sql

COLUMNS = "id, org_id, channel, config, status, created_at"


async def list_channel_configs(conn: asyncpg.Connection, org_id) -> list[dict]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM channel_configs WHERE org_id = $1 ORDER BY channel", org_id)
    return sql.as_dicts(rows)


async def save_channel_config(conn: asyncpg.Connection, org_id, channel: str, config: dict,
                              status: str | None) -> dict:
    """Insert or replace the config; the status changes only when one is given. Call inside a transaction."""
    if channel == "email":
        await email_senders.claim_addresses(conn, org_id, config)
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
