"""Proving a sender address: the signed confirmation token mailed to it, and whose domains are off limits.

A token is `<base64url payload>.<base64url HMAC-SHA256>`, the payload `org id|address|expiry (epoch s)`,
keyed by a key derived from the server's secret (so it is useless for anything else). Pure: no I/O.
"""
from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac

from outreach.runtime import errors

TOKEN_LIFETIME_SECONDS = 3 * 24 * 3600
INVALID_LINK = "This confirmation link is invalid or has expired"


def token_key(secret: str) -> bytes:
    return hashlib.sha256(b"outreach sender proof\0" + secret.encode()).digest()


def sign_token(secret: str, org_id, address: str, expires_at: int) -> str:
    payload = f"{org_id}|{address.lower()}|{expires_at}".encode()
    signature = hmac.new(token_key(secret), payload, hashlib.sha256).digest()
    return f"{encode(payload)}.{encode(signature)}"


def read_token(secret: str, token: str, now: float) -> tuple[str, str]:
    """(org id, address) of a token this server signed that has not expired; Invalid otherwise."""
    head, _, tail = token.partition(".")
    try:
        payload, signature = decode(head), decode(tail)
    except (binascii.Error, ValueError):
        raise errors.Invalid(INVALID_LINK) from None
    expected = hmac.new(token_key(secret), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise errors.Invalid(INVALID_LINK)
    org_id, address, expires_at = payload.decode().split("|")
    if int(expires_at) < now:
        raise errors.Invalid(INVALID_LINK)
    return org_id, address


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def deployment_domain(email_from: str | None) -> str | None:
    """The domain of OUTREACH_EMAIL_FROM (`Name <addr>` or `addr`), or None when it is unset."""
    address = email.utils.parseaddr(email_from or "")[1]
    return domain_of(address) if "@" in address else None


def is_deployment_address(address: str, email_from: str | None) -> bool:
    """An address at the deployment's own sending domain (or below it): only the deployment sends from those."""
    own = deployment_domain(email_from)
    domain = domain_of(address)
    return own is not None and (domain == own or domain.endswith("." + own))
