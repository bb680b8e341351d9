"""Svix webhook signatures, as Resend and Clerk send them.

A delivery is signed with HMAC-SHA256 over `{svix-id}.{svix-timestamp}.{body}`, keyed with the base64 secret
after `whsec_`, and is refused when more than 5 minutes old or early (a replay, or a forged clock).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Annotated

import orjson
from pydantic import Field

from outreach.http import validation
from outreach.runtime import errors

TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
NOT_AN_EVENT = "Event must be a JSON object with a type"


class SvixSignature(validation.Model):
    """The headers of a Svix-signed delivery (verify_signature checks them)."""

    textual = True
    id: Annotated[str, Field(alias="svix-id", description="the delivery id")]
    timestamp: Annotated[str, Field(alias="svix-timestamp", description="seconds since the epoch")]
    signature: Annotated[str, Field(alias="svix-signature", description="v1,<base64 HMAC-SHA256>, space-separated")]


class EventReceived(validation.Reply):
    """A delivery acknowledged, with its event type."""

    received: bool
    type: str


def signing_key(secret: str, setting: str) -> bytes:
    """The HMAC key of a `whsec_` secret; NotConfigured naming `setting` when it is not one."""
    encoded = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise errors.NotConfigured(f"{setting} is not a Svix signing secret (whsec_...)") from None


def verify_signature(key: bytes, headers, body: bytes, now: float) -> str:
    """The svix-id of a delivery signed with `key` within the tolerance; Invalid otherwise."""
    event_id, stamp, signatures = (headers.get(name) for name in ("svix-id", "svix-timestamp", "svix-signature"))
    if not (event_id and stamp and signatures):
        raise errors.Invalid("Missing signature")
    try:
        sent_at = int(stamp)
    except ValueError:
        raise errors.Invalid("Invalid signature") from None
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        raise errors.Invalid("Invalid signature")
    expected = sign(key, event_id, stamp, body).encode()
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return event_id
    raise errors.Invalid("Invalid signature")


def sign(key: bytes, event_id: str, stamp: str, body: bytes) -> str:
    digest = hmac.new(key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def decode_event(body: bytes) -> dict:
    """A delivery's JSON object; Invalid for anything else (checked before a signature is trusted to mean much)."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.Invalid("Invalid JSON body") from None
    if not isinstance(event, dict):
        raise errors.Invalid(NOT_AN_EVENT)
    return event
