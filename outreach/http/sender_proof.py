"""Proving a sender address: list the org's claims, start a proof, and the public confirmation link.

An organization claims addresses by saving its email settings (http/channels.py); it may send from its
`fromEmail` once it proves it (storage/email_senders.py). `POST .../verify` proves an address at once when its
domain is verified in the deployment's Resend account (and no other org holds an address there); otherwise it
mails a signed link to the address, from the deployment's own sender, and `GET /api/email/confirm` proves it
when the link is opened. One link per organization and address every 10 minutes: the route cannot be used to
mail strangers repeatedly.
"""
from __future__ import annotations

import datetime
import time
import uuid
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import channels, keys, params, validation, wire
from outreach.http.auth import admin_only, principal
from outreach.http.email import email_port, send_through
from outreach.runtime import errors, sender_proof
from outreach.runtime.ports import OutboundEmail
from outreach.storage import db, email_senders

RESEND_EVERY_SECONDS = 600
CONFIRM_PATH = "/api/email/confirm"
SUBJECT = "Confirm your sender address"
NO_SECRET = "Sender confirmation needs the server's secret key: set OUTREACH_SECRET_KEY"
NO_DEFAULT_SENDER = "Sender confirmation emails go out from the deployment's sender: set OUTREACH_EMAIL_FROM"
Method = validation.one_of(("link", "domain"))


class SenderVerify(validation.Model):
    address: Annotated[channels.EmailAddress, validation.Required(validation.blank), Field(
        description="an address the organization's email settings name (fromEmail or replyTo)")]


class SenderConfirmQuery(validation.Model):
    textual = True
    token: Annotated[validation.Text(max_length=2000), validation.Required(validation.blank)]


class SenderAddress(validation.Reply):
    address: str
    verified: bool
    verified_by: Method | None
    verified_at: datetime.datetime | None


class SenderProof(validation.Reply):
    address: str
    verified: bool
    method: Method


class SenderAddresses(validation.Reply):
    senders: list[SenderAddress]


class SenderConfirmed(validation.Reply):
    verified: bool
    address: str


@params.answers(200, SenderAddresses)
async def list_senders(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await email_senders.list_claims(conn, principal(request).org_id)
    return wire.json_response({"senders": [wire.to_wire(row) for row in rows]})


@admin_only
@params.accepts(body=SenderVerify)
@params.answers(200, SenderProof)
async def verify_sender(request: web.Request) -> web.Response:
    """200 when the domain proves the address (or it was proven already); 202 once a confirmation link is mailed."""
    address = (await params.body(request))["address"].lower()
    org_id = principal(request).org_id
    claim = await claim_of(request, org_id, address)
    if claim["verified"]:
        return wire.json_response({"address": address, "verified": True, "method": claim["verified_by"]})
    if await domain_proves(request, org_id, address):
        async with db.transaction(request.app[keys.DB]) as conn:
            await email_senders.prove_address(conn, org_id, address, "domain")
        return wire.json_response({"address": address, "verified": True, "method": "domain"})
    await mail_link(request, org_id, address)
    return wire.json_response({"address": address, "verified": False, "method": "link"}, status=202)


async def claim_of(request: web.Request, org_id, address: str) -> dict:
    """The org's claim on the address; Invalid when it makes none, Conflict when another org has proven it."""
    async with db.connection(request.app[keys.DB]) as conn:
        claims = {row["address"]: row for row in await email_senders.list_claims(conn, org_id)}
        if address not in claims:
            raise errors.Invalid("Save this address in your email settings first")
        if await email_senders.held_elsewhere(conn, org_id, address):
            raise errors.Conflict(email_senders.VERIFIED_ELSEWHERE)
    return claims[address]


async def domain_proves(request: web.Request, org_id, address: str) -> bool:
    """The address's domain is verified at Resend and no other org holds an address there."""
    port = request.app.get(keys.SENDER_DOMAINS)
    if port is None:
        return False
    domain = sender_proof.domain_of(address)
    if domain not in await port.verified_domains():
        return False
    async with db.connection(request.app[keys.DB]) as conn:
        return not await email_senders.domain_held_elsewhere(conn, org_id, domain)


async def mail_link(request: web.Request, org_id, address: str) -> None:
    settings = request.app[keys.SETTINGS]
    if not settings.secret_key:
        raise errors.NotConfigured(NO_SECRET)
    if not settings.email_from:
        raise errors.NotConfigured(NO_DEFAULT_SENDER)
    port = email_port(request)
    await throttle(request, org_id, address)
    token = sender_proof.sign_token(settings.secret_key, org_id, address,
                                    int(time.time()) + sender_proof.TOKEN_LIFETIME_SECONDS)
    link = f"{settings.public_url}{CONFIRM_PATH}?token={token}"
    text = (f"Someone asked to send email from {address} through Outreach Runtime.\n\nIf it was you (or your "
            f"team), confirm the address by opening this link within 3 days:\n\n{link}\n\n"
            f"If not, ignore this email: nothing will be sent from your address.")
    result = await send_through(port, OutboundEmail(settings.email_from, address, None, SUBJECT, text),
                                f"sender-proof:{uuid.uuid4()}")  # each mail carries a new token
    if not result.ok:
        await request.app[keys.REDIS].delete(throttle_key(org_id, address))  # nothing was mailed: allow a retry
        raise errors.ProviderError(f"The confirmation email could not be sent: {result.error}")


async def throttle(request: web.Request, org_id, address: str) -> None:
    redis = request.app[keys.REDIS]
    if not await redis.set(throttle_key(org_id, address), 1, nx=True, ex=RESEND_EVERY_SECONDS):
        wait = max(1, await redis.ttl(throttle_key(org_id, address)))
        raise errors.RateLimited("A confirmation email was sent to this address recently; open it, or try later",
                                 retry_after=wait)


def throttle_key(org_id, address: str) -> str:
    return f"sender-proof:{org_id}:{address}"


@params.accepts(query=SenderConfirmQuery)
@params.answers(200, SenderConfirmed)
async def confirm_sender(request: web.Request) -> web.Response:
    """The link mailed to the address: public, its signature is the proof that its reader holds the mailbox."""
    secret = request.app[keys.SETTINGS].secret_key
    if not secret:
        raise errors.NotConfigured(NO_SECRET)
    org_id, address = sender_proof.read_token(secret, params.query(request)["token"], time.time())
    async with db.transaction(request.app[keys.DB]) as conn:
        await email_senders.prove_address(conn, params.parse_uuid(org_id, sender_proof.INVALID_LINK, errors.Invalid),
                                          address, "link")
    return wire.json_response({"verified": True, "address": address})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/channels/email/senders", list_senders)
    router.add_post("/api/dashboard/channels/email/verify", verify_sender)
    router.add_get(CONFIRM_PATH, confirm_sender)
