"""Channel config routes: list, and upsert one config per channel (email sender settings are validated)."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, schema, wire
from outreach.http.auth import principal
from outreach.runtime import policy
from outreach.runtime.models import Channel
from outreach.storage import channels, db

STATUSES = ("active", "inactive")
EMAIL_KEYS = ("fromEmail", "fromName", "replyTo")
MAX_SENDER_NAME = 100
MAX_ADDRESS = 254
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS = rf'[^\s\x00-\x1f\x7f@<>()\[\]\\,;:"]{{1,64}}@{LABEL}(?:\.{LABEL})+'
# A line break in an address or a sender name would let it inject mail headers.
EMAIL_ADDRESS = schema.Text(strip=" ", max_length=MAX_ADDRESS, pattern=ADDRESS, format="email")

CHANNEL_CONFIG = schema.Model("ChannelConfigSave", [
    schema.Field("channel", schema.Text(enum=policy.CHANNEL_NAMES), required=True, empty=schema.blank,
                 message={"missing": "Missing required fields: channel, config",
                          "type": "Invalid channel. Must be one of: voice, telegram, email",
                          "enum": "Invalid channel. Must be one of: voice, telegram, email"}),
    schema.Field("config", schema.Object(), required=True,
                 message={"missing": "Missing required fields: channel, config"},
                 description="free-form for voice and telegram; for email, an EmailSenderConfig"),
    schema.Field("status", schema.Text(enum=STATUSES), default=schema.OMIT,
                 message=f"Invalid status. Must be one of: {', '.join(STATUSES)}",
                 description="absent keeps the current status (a new config is active)"),
])
# The sender settings, complete: `replyTo` defaults to `fromEmail` (in email_config), `fromName` to empty.
EMAIL_SENDER = schema.Model("EmailSenderConfig", [
    schema.Field("fromEmail", EMAIL_ADDRESS, required=True, empty=schema.blank, column="fromEmail",
                 message={"missing": "config.fromEmail is required",
                          **dict.fromkeys(("type", "length", "pattern"),
                                          "config.fromEmail must be a valid email address")}),
    schema.Field("fromName", schema.Text(strip=" ", max_length=MAX_SENDER_NAME, pattern=r"[^\x00-\x1f\x7f]*"),
                 default="", column="fromName",
                 message={"type": "config.fromName must be a string",
                          "pattern": "config.fromName must not contain line breaks or control characters",
                          "length": f"config.fromName must be at most {MAX_SENDER_NAME} characters"}),
    schema.Field("replyTo", EMAIL_ADDRESS, empty=schema.blank, column="replyTo",
                 message="config.replyTo must be a valid email address"),
], unknown=lambda keys: f"Unknown email config field: {', '.join(keys)}. Allowed: {', '.join(EMAIL_KEYS)}")
CONFIG = schema.reply("ChannelConfig", {
    "id": schema.Uuid(), "orgId": schema.Uuid(), "channel": schema.Text(enum=policy.CHANNEL_NAMES),
    "config": schema.Object(), "status": schema.Text(enum=STATUSES), "createdAt": schema.DateTime(),
})


@params.answers(200, schema.reply("ChannelConfigList", {"configs": schema.Array(schema.Object(CONFIG))}))
async def list_channel_configs(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await channels.list_channel_configs(conn, principal(request).org_id)
    return wire.json_response({"configs": [wire.to_wire(row) for row in rows]})


@params.accepts(body=CHANNEL_CONFIG)
@params.answers(200, CONFIG)
async def save_channel_config(request: web.Request) -> web.Response:
    values = await params.body(request)
    channel, config = values["channel"], values["config"]
    if channel == Channel.EMAIL.value:
        config = email_config(config)
    async with db.transaction(request.app[keys.DB]) as conn:  # an email config also claims its addresses
        row = await channels.save_channel_config(conn, principal(request).org_id, channel, config,
                                                 values.get("status"))
    return wire.json_response(wire.to_wire(row))


def email_config(config: dict) -> dict:
    sender = EMAIL_SENDER.parse(config)
    return {**sender, "replyTo": sender["replyTo"] or sender["fromEmail"]}


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/channels"
    router.add_get(base, list_channel_configs)
    router.add_post(base, save_channel_config)
    router.add_put(base, save_channel_config)
