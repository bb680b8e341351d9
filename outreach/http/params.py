"""Reading requests: JSON bodies, path ids, pagination. Bad input becomes a clear 400 or 404."""
from __future__ import annotations

import datetime
import math
import uuid

import orjson
from aiohttp import web

from outreach.runtime import errors
from outreach.runtime.models import Page

MAX_LIMIT = 100


async def read_json(request: web.Request) -> dict:
    body = await request.read()
    try:
        data = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        raise errors.Invalid("Invalid JSON body") from None
    if not isinstance(data, dict):
        raise errors.Invalid("Request body must be a JSON object")
    return data


def parse_uuid(value, message: str = "Not found", error=errors.NotFound) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) == 36:
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise error(message)


def path_id(request: web.Request, name: str = "id", message: str = "Not found") -> uuid.UUID:
    """A path id that is not a UUID names nothing: 404, like an id of another organization."""
    return parse_uuid(request.match_info[name], message)


def body_uuid(value, field: str) -> uuid.UUID:
    return parse_uuid(value, f"{field} must be a UUID", errors.Invalid)


def uuid_list(value, message: str) -> list[uuid.UUID]:
    if not isinstance(value, list) or not value:
        raise errors.Invalid(message)
    return [parse_uuid(item, f"Invalid id in list: {item!r}", errors.Invalid) for item in value]


def whole_number(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.Invalid(f"{name} must be a whole number") from None


def page_from(request: web.Request, default_limit: int) -> Page:
    number = max(1, whole_number(request, "page", 1))
    limit = min(MAX_LIMIT, max(1, whole_number(request, "limit", default_limit)))
    return Page(number=number, limit=limit)


def pagination(page: Page, total: int) -> dict:
    return {"page": page.number, "limit": page.limit, "total": total, "totalPages": math.ceil(total / page.limit)}


def optional_text(body: dict, key: str) -> str | None:
    """A text field where falsy means null; anything that is not text is refused."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.Invalid(f"{key} must be a string")
    return value.strip() or None


def required_name(body: dict, key: str = "name", message: str = "Name is required") -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise errors.Invalid(message)
    return value.strip()


def optional_time(body: dict, key: str) -> datetime.datetime | None:
    """An ISO 8601 time; one without a zone (a datetime-local input) is taken as UTC."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.Invalid(f"{key} must be an ISO 8601 date and time")
    try:
        parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise errors.Invalid(f"{key} must be an ISO 8601 date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def optional_object(body: dict, key: str, default: dict | None = None) -> dict:
    value = body.get(key)
    if value is None:
        return {} if default is None else default
    if not isinstance(value, dict):
        raise errors.Invalid(f"{key} must be an object")
    return value
