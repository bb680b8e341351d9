"""Channel config routes: list, and upsert one config per channel (email sender settings are validated)."""
from __future__ import annotations

import re

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.runtime import errors, policy
from outreach.runtime.models import Channel
from outreach.storage import channels, db

STATUSES = ("active", "inactive")
EMAIL_KEYS = ("fromEmail", "fromName", "replyTo")
MAX_SENDER_NAME = 100
MAX_ADDRESS = 254
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS = re.compile(rf"[^\s\x00-\x1f\x7f@<>()\[\]\\,;:\"]{{1,64}}@{LABEL}(?:\.{LABEL})+")


async def list_channel_configs(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await channels.list_channel_configs(conn, principal(request).org_id)
    return wire.json_response({"configs": [wire.to_wire(row) for row in rows]})


async def save_channel_config(request: web.Request) -> web.Response:
    body = await params.read_json(request)
    if body.get("channel") in (None, "") or body.get("config") is None:
        raise errors.Invalid("Missing required fields: channel, config")
    channel = policy.parse_enum(Channel, body["channel"], "Invalid channel. Must be one of: voice, telegram, email")
    config = params.optional_object(body, "config")
    if channel is Channel.EMAIL:
        config = email_config(config)
    status = parse_status(body.get("status"))
    async with db.connection(request.app[keys.DB]) as conn:
        row = await channels.save_channel_config(conn, principal(request).org_id, channel.value, config, status)
    return wire.json_response(wire.to_wire(row))


def parse_status(value) -> str | None:
    """Absent keeps the current status (a new config is active)."""
    if value is None:
        return None
    if value not in STATUSES:
        raise errors.Invalid(f"Invalid status. Must be one of: {', '.join(STATUSES)}")
    return value


def email_config(config: dict) -> dict:
    """The sender settings, complete: `replyTo` defaults to `fromEmail`, `fromName` to empty."""
    unknown = sorted(set(config) - set(EMAIL_KEYS))
    if unknown:
        raise errors.Invalid(f"Unknown email config field: {', '.join(unknown)}. Allowed: {', '.join(EMAIL_KEYS)}")
    from_email = parse_address(config.get("fromEmail"), "fromEmail")
    if from_email is None:
        raise errors.Invalid("config.fromEmail is required")
    reply_to = parse_address(config.get("replyTo"), "replyTo") or from_email
    return {"fromEmail": from_email, "fromName": parse_sender_name(config.get("fromName")), "replyTo": reply_to}


def parse_address(value, field: str) -> str | None:
    if value is None or value == "":
        return None
    address = value.strip(" ") if isinstance(value, str) else ""  # a line break anywhere is refused
    if len(address) > MAX_ADDRESS or not ADDRESS.fullmatch(address):
        raise errors.Invalid(f"config.{field} must be a valid email address")
    return address


def parse_sender_name(value) -> str:
    """One line of text: a line break would let a sender name inject mail headers."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.Invalid("config.fromName must be a string")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise errors.Invalid("config.fromName must not contain line breaks or control characters")
    name = value.strip()
    if len(name) > MAX_SENDER_NAME:
        raise errors.Invalid(f"config.fromName must be at most {MAX_SENDER_NAME} characters")
    return name


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/channels"
    router.add_get(base, list_channel_configs)
    router.add_post(base, save_channel_config)
    router.add_put(base, save_channel_config)
