"""Call scripts: the text an agent follows and the answers it gives to objections."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors
from outreach.storage import sql

COLUMNS = "id, org_id, name, content, objection_handlers, is_default, created_at, updated_at"


async def list_scripts(conn: asyncpg.Connection, org_id) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM scripts WHERE org_id = $1 ORDER BY updated_at DESC, id DESC", org_id
    )
    return sql.as_dicts(rows)


async def create_script(conn: asyncpg.Connection, org_id, fields: dict) -> dict:
    columns, params, values = sql.insert_parts(fields, 2)
    row = await conn.fetchrow(
        f"INSERT INTO scripts (org_id, {columns}) VALUES ($1, {params}) RETURNING {COLUMNS}", org_id, *values
    )
    return dict(row)


async def get_script(conn: asyncpg.Connection, org_id, script_id) -> dict:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM scripts WHERE id = $1 AND org_id = $2", script_id, org_id)
    if row is None:
        raise errors.NotFound()
    return dict(row)


async def update_script(conn: asyncpg.Connection, org_id, script_id, fields: dict) -> dict:
    """Apply the given columns; `updated_at` moves on every update, as the contract says."""
    assignments, values = sql.set_clause(fields, 3)
    setting = ", ".join(part for part in (assignments, "updated_at = now()") if part)
    row = await conn.fetchrow(
        f"UPDATE scripts SET {setting} WHERE id = $1 AND org_id = $2 RETURNING {COLUMNS}", script_id, org_id, *values
    )
    if row is None:
        raise errors.NotFound()
    return dict(row)


async def delete_script(conn: asyncpg.Connection, org_id, script_id) -> None:
    """Campaigns that used the script keep running without one (the foreign key sets it to null)."""
    if await conn.execute("DELETE FROM scripts WHERE id = $1 AND org_id = $2", script_id, org_id) == "DELETE 0":
        raise errors.NotFound()
