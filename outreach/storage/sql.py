"""Small builders shared by the aggregate modules. Column names always come from code, never input."""
from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from outreach.runtime import errors


def set_clause(fields: Mapping[str, object], first_param: int) -> tuple[str, list]:
    """`col = $n, ...` for an UPDATE, with parameters numbered from `first_param`."""
    parts = [f"{column} = ${first_param + index}" for index, column in enumerate(fields)]
    return ", ".join(parts), list(fields.values())


def insert_parts(fields: Mapping[str, object], first_param: int) -> tuple[str, str, list]:
    """Column list and placeholder list for an INSERT."""
    columns = ", ".join(fields)
    params = ", ".join(f"${first_param + index}" for index in range(len(fields)))
    return columns, params, list(fields.values())


def as_dicts(records) -> list[dict]:
    return [dict(record) for record in records]


def escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Row operations scoped to one organization: every aggregate's get, create, update and delete.


async def insert_owned(conn: asyncpg.Connection, table: str, columns: str, org_id, fields: Mapping) -> dict:
    names, params, values = insert_parts(fields, 2)
    row = await conn.fetchrow(
        f"INSERT INTO {table} (org_id, {names}) VALUES ($1, {params}) RETURNING {columns}", org_id, *values
    )
    return dict(row)


async def fetch_owned(conn: asyncpg.Connection, table: str, columns: str, row_id, org_id, *, lock: bool = False,
                      missing: str = "Not found") -> dict:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(f"SELECT {columns} FROM {table} WHERE id = $1 AND org_id = $2{suffix}", row_id, org_id)
    if row is None:
        raise errors.NotFound(missing)
    return dict(row)


async def update_owned(conn: asyncpg.Connection, table: str, columns: str, row_id, org_id, fields: Mapping, *,
                       touch: bool = False) -> dict:
    """Set the given columns (and `updated_at` when `touch`); NotFound when the org has no such row."""
    assignments, values = set_clause(fields, 3)
    setting = ", ".join(part for part in (assignments, "updated_at = now()" if touch else "") if part)
    row = await conn.fetchrow(
        f"UPDATE {table} SET {setting} WHERE id = $1 AND org_id = $2 RETURNING {columns}", row_id, org_id, *values
    )
    if row is None:
        raise errors.NotFound()
    return dict(row)


async def delete_owned(conn: asyncpg.Connection, table: str, row_id, org_id, *, missing: str = "Not found") -> None:
    if await conn.execute(f"DELETE FROM {table} WHERE id = $1 AND org_id = $2", row_id, org_id) == "DELETE 0":
        raise errors.NotFound(missing)


async def is_owned(conn: asyncpg.Connection, table: str, row_id, org_id) -> bool:
    return bool(await conn.fetchval(f"SELECT 1 FROM {table} WHERE id = $1 AND org_id = $2", row_id, org_id))
