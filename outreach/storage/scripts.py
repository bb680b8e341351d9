"""Call scripts: the text an agent follows and the answers it gives to objections."""
from __future__ import annotations

import asyncpg

from outreach.storage import sql

COLUMNS = "id, org_id, name, content, objection_handlers, is_default, created_at, updated_at"


async def list_scripts(conn: asyncpg.Connection, org_id) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM scripts WHERE org_id = $1 ORDER BY updated_at DESC, id DESC", org_id
    )
    return sql.as_dicts(rows)


async def create_script(conn: asyncpg.Connection, org_id, fields: dict) -> dict:
    return await sql.insert_owned(conn, "scripts", COLUMNS, org_id, fields)


async def get_script(conn: asyncpg.Connection, org_id, script_id) -> dict:
    return await sql.fetch_owned(conn, "scripts", COLUMNS, script_id, org_id)


async def update_script(conn: asyncpg.Connection, org_id, script_id, fields: dict) -> dict:
    """Apply the given columns; `updated_at` moves on every update, as the contract says."""
    return await sql.update_owned(conn, "scripts", COLUMNS, script_id, org_id, fields, touch=True)


async def delete_script(conn: asyncpg.Connection, org_id, script_id) -> None:
    """Campaigns that used the script keep running without one (the foreign key sets it to null)."""
    await sql.delete_owned(conn, "scripts", script_id, org_id)
