"""The one serializer: snake_case rows to camelCase JSON, times as ISO 8601 with milliseconds and Z."""
from __future__ import annotations

import datetime
import decimal
import functools
import uuid

import orjson
from aiohttp import web


@functools.lru_cache(maxsize=512)
def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_wire(row: dict) -> dict:
    """Camel-case the top-level keys only: jsonb values (settings, metadata) stay as stored."""
    return {camel(key): value for key, value in row.items()}


def format_time(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _default(value):
    if isinstance(value, datetime.datetime):
        return format_time(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID subclass, which orjson does not take
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(data) -> str:
    return orjson.dumps(data, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def json_response(data, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)
