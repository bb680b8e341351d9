"""Channel config routes: list, and upsert one config per channel (email sender settings are validated).

Saving needs an admin. Saving email settings claims their addresses (proven later: http/sender_proof.py);
an address at the deployment's own sending domain (OUTREACH_EMAIL_FROM's) cannot be claimed."""
from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from aiohttp import web
from pydantic import ConfigDict, Field

from outreach.http import keys, params, validation, wire
from outreach.http.auth import admin_only, principal
from outreach.runtime import errors, policy, sender_proof
from outreach.runtime.models import Channel
from outreach.storage import channels, db

STATUSES = ("active", "inactive")
MAX_SENDER_NAME = 100
MAX_ADDRESS = 254
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS = rf'[^\s\x00-\x1f\x7f@<>()\[\]\\,;:"]{{1,64}}@{LABEL}(?:\.{LABEL})+'
# A line break in an address or a sender name would let it inject mail headers.
EmailAddress = validation.Text(strip=" ", max_length=MAX_ADDRESS, pattern=ADDRESS, format="email")
Status = validation.one_of(STATUSES)
SenderName = validation.Text(strip=" ", max_length=MAX_SENDER_NAME, pattern=r"[^\x00-\x1f\x7f]*")


class ChannelConfigSave(validation.Model):
    absent_when_none = frozenset({"status"})
    channel: Annotated[validation.one_of(policy.CHANNEL_NAMES), validation.Required(validation.blank)]
    config: Annotated[validation.Object, validation.Required(), Field(
        description="free-form for voice and telegram; for email, an EmailSenderConfig")]
    status: Annotated[Status | None, Field(
        description="absent keeps the current status (a new config is active)")] = None


class EmailSenderConfig(validation.Model):
    """The sender settings, complete: `replyTo` defaults to `fromEmail` (in email_config), `fromName` to empty."""

    model_config = ConfigDict(extra="forbid")
    fromEmail: Annotated[EmailAddress, validation.Required(validation.blank)]  # noqa: N815 (kept as on the wire)
    fromName: Annotated[SenderName, validation.Empty()] = ""  # noqa: N815
    replyTo: Annotated[EmailAddress, validation.Empty(validation.blank)] = None  # noqa: N815


class ChannelConfig(validation.Reply):
    id: uuid.UUID
    org_id: uuid.UUID
    channel: validation.one_of(policy.CHANNEL_NAMES)
    config: dict
    status: Status
    created_at: datetime.datetime


class ChannelConfigList(validation.Reply):
    configs: list[ChannelConfig]


@params.answers(200, ChannelConfigList)
async def list_channel_configs(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await channels.list_channel_configs(conn, principal(request).org_id)
    return wire.json_response({"configs": [wire.to_wire(row) for row in rows]})


@admin_only
@params.accepts(body=ChannelConfigSave)
@params.answers(200, ChannelConfig)
async def save_channel_config(request: web.Request) -> web.Response:
    values = await params.body(request)
    channel, config = values["channel"], values["config"]
    if channel == Channel.EMAIL.value:
        config = email_config(config, request.app[keys.SETTINGS].email_from)
    async with db.transaction(request.app[keys.DB]) as conn:  # an email config also claims its addresses
        row = await channels.save_channel_config(conn, principal(request).org_id, channel, config,
                                                 values.get("status"))
    return wire.json_response(wire.to_wire(row))


def email_config(config: dict, email_from: str | None) -> dict:
    sender = validation.parse(EmailSenderConfig, config)
    for key in ("fromEmail", "replyTo"):
        if sender[key] and sender_proof.is_deployment_address(sender[key], email_from):
            raise errors.Invalid(f"config.{key} is at this deployment's own sending domain, which an organization "
                                 f"cannot use")
    return {**sender, "replyTo": sender["replyTo"] or sender["fromEmail"]}


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/channels"
    router.add_get(base, list_channel_configs)
    router.add_post(base, save_channel_config)
    router.add_put(base, save_channel_config)
