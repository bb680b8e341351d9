"""Resend's webhook: delivery status of the emails we sent, and replies from leads.

Every request must carry a valid Svix signature (HMAC-SHA256 of `{svix-id}.{svix-timestamp}.{body}` with
the base64 key after `whsec_`, at most 5 minutes old or early). Without RESEND_WEBHOOK_SECRET the route
refuses everything (503): unsigned, anyone could forge statuses and replies. A delivery is applied once:
its svix-id is recorded in the transaction that applies it, so Resend's retries are acknowledged only.

Status events find the message by Resend's email id within the organization named by the `org_id` tag
we attach to every send. Statuses only move forward (see storage.messages.advance_status).
"""
from __future__ import annotations

import datetime
import email.utils
import time
import uuid
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import keys, params, svix, validation, wire
from outreach.runtime import errors, optout, replies
from outreach.storage import db, email_senders, messages, suppressions, webhook_events
from outreach.storage import replies as lead_replies

PROVIDER = "resend"
STATUS_BY_EVENT = {
    "email.sent": "sent",
    "email.delivered": "delivered",
    "email.opened": "read",
    "email.clicked": "read",  # a click implies the email was opened, whether or not the open pixel loaded
    "email.bounced": "failed",
    "email.complained": "failed",
    "email.failed": "failed",
}
RECEIVED = "email.received"


class ResendEvent(validation.Model):
    type: Annotated[validation.Text(), Field(
        description="email.sent, email.delivered, email.opened, email.clicked, email.bounced, email.complained, "
                    "email.failed or email.received")]
    data: Annotated[validation.Anything, Field(
        description="an object: email_id, tags ({org_id}); for email.received: from, to, subject, text")] = None



@params.accepts(body=ResendEvent, headers=svix.SvixSignature)
@params.answers(200, svix.EventReceived)
async def receive_resend_event(request: web.Request) -> web.Response:
    secret = request.app[keys.SETTINGS].resend_webhook_secret
    if not secret:
        raise errors.NotConfigured("Resend webhook is not configured: set RESEND_WEBHOOK_SECRET")
    body = await request.read()
    event_id = svix.verify_signature(svix.signing_key(secret, "RESEND_WEBHOOK_SECRET"), request.headers, body,
                                     time.time())
    raw = svix.decode_event(body)
    kind, data = parse_event(params.parse(request, "body", raw))
    created_at = raw.get("created_at") if isinstance(raw, dict) else None
    async with db.transaction(request.app[keys.DB]) as conn:
        if not await webhook_events.record_event(conn, PROVIDER, event_id):
            return wire.json_response({"received": True, "type": kind, "duplicate": True})
        outcome = await apply_reply(conn, data) if kind == RECEIVED else await apply_status(conn, kind, data)
        if outcome.get("unknown_email") and is_recent(created_at, time.time()):
            # A fast bounce can arrive before the send's answer is stored: refuse it (the transaction, with
            # its dedupe record, rolls back) so Resend delivers it again a little later.
            raise errors.Conflict("Unknown email id; retry later")
    outcome.pop("unknown_email", None)
    return wire.json_response({"received": True, "type": kind, **outcome})


def is_recent(created_at, now: float, window: float = 3600) -> bool:
    """An event created in the last hour; later, an unknown email id is not ours to wait for."""
    try:
        created = datetime.datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
    except ValueError:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    return now - created.timestamp() < window


# --- Svix signatures ------------------------------------------------------------------------------------


# --- events ---------------------------------------------------------------------------------------------


def parse_event(event: dict) -> tuple[str, dict]:
    """(type, data), checked before anything is written: a malformed event is refused, not half-applied."""
    data = event["data"] if isinstance(event["data"], dict) else {}
    if event["type"] == RECEIVED and not address_of(data.get("from")):
        raise errors.Invalid("Missing from field")
    return event["type"], data


async def apply_status(conn, kind: str, data: dict) -> dict:
    status = STATUS_BY_EVENT.get(kind)
    email_id = data.get("email_id")
    org_id = org_of(data.get("tags"))
    if status is None or not isinstance(email_id, str) or org_id is None:
        return {"updated": False}
    bounce = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
    error = bounce.get("message") if status == "failed" and isinstance(bounce.get("message"), str) else None
    if kind == "email.complained" or (kind == "email.bounced" and is_hard_bounce(bounce)):
        source = "complaint" if kind == "email.complained" else "bounce"
        for address in filter(None, map(address_of, as_list(data.get("to")))):
            await suppressions.suppress(conn, org_id, "email", address, source)
    if not await messages.has_email(conn, org_id, email_id):
        return {"updated": False, "unknown_email": True}
    return {"updated": await messages.advance_status(conn, org_id, email_id, status, error)}


async def apply_reply(conn, data: dict) -> dict:
    """A lead answered: logged within the one organization that takes mail at the recipient address and wrote to
    the sender (storage.messages.reply_orgs), on every lead of the address it contacted.

    No automatic answer is sent: Resend's email.received carries no body, so there is nothing to reply to.
    """
    sender = address_of(data["from"])
    org_ids = await reply_orgs(conn, data, sender)
    if len(org_ids) != 1:
        reason = "Recipient address is shared by several organizations" if org_ids else "Unknown recipient address"
        return {"success": False, "error": reason}
    subject = data.get("subject") if isinstance(data.get("subject"), str) and data["subject"] else "(no subject)"
    content = data.get("text") if isinstance(data.get("text"), str) else ""
    email_id = data.get("email_id") if isinstance(data.get("email_id"), str) else None
    checks = replies.auth_results(data)
    verified = replies.sender_verified(checks)
    stored = await messages.record_reply(conn, org_ids[0], sender, subject=subject, content=content,
                                         provider_id=email_id, verified=verified, checks=checks)
    if not stored:
        return {"success": False, "error": "Lead not found"}
    if verified:  # a forged sender must not stop, qualify or unsubscribe anyone
        for reply in stored:
            await lead_replies.take_reply(conn, org_ids[0], reply["lead_id"])
        if optout.is_stop_request(subject) or optout.is_stop_request(content):
            await suppressions.suppress(conn, org_ids[0], "email", sender, "reply")
    return {"success": True, "messageId": stored[0]["id"], "verified": verified}


async def reply_orgs(conn, data: dict, sender: str) -> list:
    """The organizations an inbound email may belong to: those taking mail at a recipient address, narrowed to
    the one whose email it answers or that wrote to the sender (another org's claim on the address is no veto)."""
    recipients = [address for address in map(address_of, as_list(data.get("to"))) if address]
    org_ids = await email_senders.orgs_for_addresses(conn, recipients) if recipients else []
    return await messages.reply_orgs(conn, org_ids, sender, replies.thread_ids(data))


def is_hard_bounce(bounce: dict) -> bool:
    """A permanent failure (the address does not exist, the domain refuses mail); a soft bounce (mailbox full,
    greylisting) passes and suppresses nothing. Resend says `Permanent` / `Transient`."""
    return str(bounce.get("type", "")).lower() in ("permanent", "hard")


def org_of(tags) -> uuid.UUID | None:
    """The `org_id` tag, sent as [{name, value}] and echoed by Resend as {name: value} (either is accepted)."""
    if isinstance(tags, list):
        tags = {tag.get("name"): tag.get("value") for tag in tags if isinstance(tag, dict)}
    value = tags.get("org_id") if isinstance(tags, dict) else None
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def address_of(value) -> str | None:
    """`Name <addr>` or `addr`, lower-cased; None when there is no address."""
    if not isinstance(value, str):
        return None
    address = email.utils.parseaddr(value)[1].strip().lower()
    return address if "@" in address else None


def as_list(value) -> list:
    if isinstance(value, list):
        return value
    return [value] if value else []


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/webhook/resend", receive_resend_event)
