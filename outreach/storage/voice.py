"""Voice configs: one per organization, created with the defaults the first time it is read."""
from __future__ import annotations

import asyncpg

from outreach.storage import sql

# `speed` is a `real`; through numeric it reaches the wire as 1.1, not 1.100000023841858.
COLUMNS = (
    "id, org_id, voice_id, voice_name, selected_voices, language, personality, speed::numeric::float8 AS speed,"
    " is_default, created_at"
)


async def get_voice_config(conn: asyncpg.Connection, org_id) -> dict:
    """The org's config, inserting the default row first; concurrent first reads create only one."""
    await conn.execute("INSERT INTO voice_configs (org_id) VALUES ($1) ON CONFLICT (org_id) DO NOTHING", org_id)
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM voice_configs WHERE org_id = $1", org_id)
    return dict(row)


async def save_voice_config(conn: asyncpg.Connection, org_id, fields: dict) -> dict:
    """Insert the org's config or update the given columns of it, in one statement."""
    if not fields:
        return await get_voice_config(conn, org_id)
    columns, params, values = sql.insert_parts(fields, 2)
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in fields)
    row = await conn.fetchrow(
        f"""INSERT INTO voice_configs (org_id, {columns}) VALUES ($1, {params})
            ON CONFLICT (org_id) DO UPDATE SET {updates} RETURNING {COLUMNS}""",
        org_id, *values,
    )
    return dict(row)
