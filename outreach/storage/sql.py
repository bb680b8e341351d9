"""Small builders shared by the aggregate modules. Column names always come from code, never input."""
from __future__ import annotations

from collections.abc import Mapping


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
