"""POST /api/webhook/clerk: Clerk's organization events, Svix-signed with CLERK_WEBHOOK_SECRET.

`organizationMembership.deleted` (a member left or was removed) revokes the API keys that member created in
that organization: a key acts as an admin, and must not outlive its creator's membership. Each delivery is
applied once (its svix-id is recorded in the transaction that applies it); other event types are acknowledged.
Without the secret the route refuses everything (503): unsigned, anyone could revoke a team's keys.
"""
from __future__ import annotations

import logging
import time
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import keys, params, svix, validation, wire
from outreach.runtime import errors
from outreach.storage import api_keys, db, webhook_events

log = logging.getLogger(__name__)
PROVIDER = "clerk"
MEMBERSHIP_DELETED = "organizationMembership.deleted"


class ClerkEvent(validation.Model):
    type: Annotated[validation.Text(), Field(
        description="organizationMembership.deleted is applied; other types are acknowledged")]
    data: Annotated[validation.Anything, Field(
        description="for a membership: organization.id and public_user_data.user_id")] = None


class ClerkEventReceived(svix.EventReceived):
    revoked: int


@params.accepts(body=ClerkEvent, headers=svix.SvixSignature)
@params.answers(200, ClerkEventReceived)
async def receive_clerk_event(request: web.Request) -> web.Response:
    secret = request.app[keys.SETTINGS].clerk_webhook_secret
    if not secret:
        raise errors.NotConfigured("Clerk webhook is not configured: set CLERK_WEBHOOK_SECRET")
    body = await request.read()
    event_id = svix.verify_signature(svix.signing_key(secret, "CLERK_WEBHOOK_SECRET"), request.headers, body,
                                     time.time())
    event = params.parse(request, "body", svix.decode_event(body))
    member = removed_member(event)
    async with db.transaction(request.app[keys.DB]) as conn:
        if not await webhook_events.record_event(conn, PROVIDER, event_id):
            return wire.json_response({"received": True, "type": event["type"], "duplicate": True})
        revoked = await api_keys.revoke_member_keys(conn, *member) if member else 0
    if revoked:
        log.info("clerk: %s left %s; %d API key(s) revoked", member[1], member[0], revoked)
    return wire.json_response({"received": True, "type": event["type"], "revoked": revoked})


def removed_member(event: dict) -> tuple[str, str] | None:
    """(Clerk org id, user id) of a membership deletion; Invalid when one names neither."""
    if event["type"] != MEMBERSHIP_DELETED:
        return None
    data = event["data"] if isinstance(event["data"], dict) else {}
    org_id = text_at(data, "organization", "id")
    user_id = text_at(data, "public_user_data", "user_id")
    if not (org_id and user_id):
        raise errors.Invalid("Membership event must name organization.id and public_user_data.user_id")
    return org_id, user_id


def text_at(data: dict, outer: str, inner: str) -> str | None:
    nested = data.get(outer)
    value = nested.get(inner) if isinstance(nested, dict) else None
    return value if isinstance(value, str) and value else None


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/webhook/clerk", receive_clerk_event)
