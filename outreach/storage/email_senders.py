"""Email senders: the address an organization's email goes out from, and the organization an address belongs to.

Saving the email channel config (`fromEmail`, `fromName`, `replyTo`) claims its addresses. A claim is not
ownership: several organizations may claim one address, and an org sends from its `fromEmail` only once it
has proven it (a confirmation link mailed to it, or its domain verified at Resend). A proven address is
held by that one organization: nobody else can claim or prove it while it does.
"""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors

SPECIALS = set('()<>[]:;@\\,."')
VERIFIED_ELSEWHERE = "This sender address is verified by another organization"


async def email_sender(conn: asyncpg.Connection, org_id) -> dict | None:
    """{"from": "Name <address>", "reply_to": address} from the org's email settings; None when it has none.
    Invalid, with the reason, while the org has not proven its `fromEmail`: nothing may be sent from it."""
    config = await conn.fetchval(
        "SELECT config FROM channel_configs WHERE org_id = $1 AND channel = 'email'", org_id
    )
    if not isinstance(config, dict) or not config.get("fromEmail"):
        return None
    if not await is_proven(conn, org_id, config["fromEmail"]):
        raise errors.Invalid(unproven_reason(config["fromEmail"]))
    return {"from": format_sender(config.get("fromName"), config["fromEmail"]),
            "reply_to": config.get("replyTo") or config["fromEmail"]}


def unproven_reason(address: str) -> str:
    return (f"The sender address {address} is not verified: open the confirmation link sent to it, or verify "
            f"its domain at Resend (POST /api/dashboard/channels/email/verify)")


async def is_proven(conn: asyncpg.Connection, org_id, address: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM sender_addresses WHERE address = $1 AND org_id = $2 AND verified_at IS NOT NULL",
        address.lower(), org_id))


async def claim_addresses(conn: asyncpg.Connection, org_id, config: dict) -> None:
    """The config's from and reply-to addresses become the org's claims (its others are dropped, with any
    proof); an address another org has proven is a conflict. Call inside a transaction."""
    addresses = sorted({str(config[key]).lower() for key in ("fromEmail", "replyTo") if config.get(key)})
    held = await conn.fetchval(
        """SELECT 1 FROM sender_addresses
           WHERE address = ANY($2::text[]) AND org_id <> $1 AND verified_at IS NOT NULL""", org_id, addresses)
    if held:
        raise errors.Conflict(VERIFIED_ELSEWHERE)
    await conn.execute("DELETE FROM sender_addresses WHERE org_id = $1 AND NOT (address = ANY($2::text[]))",
                       org_id, addresses)
    await conn.execute(
        """INSERT INTO sender_addresses (address, org_id) SELECT unnest($2::text[]), $1
           ON CONFLICT (address, org_id) DO NOTHING""", org_id, addresses)


async def list_claims(conn: asyncpg.Connection, org_id) -> list[dict]:
    rows = await conn.fetch(
        """SELECT address, verified_at IS NOT NULL AS verified, verified_by, verified_at FROM sender_addresses
           WHERE org_id = $1 ORDER BY address""", org_id)
    return [dict(row) for row in rows]


async def prove_address(conn: asyncpg.Connection, org_id, address: str, method: str) -> None:
    """Mark the org's claim proven (`link` or `domain`). Invalid when it no longer claims the address, Conflict
    when another org holds it proven (the unique index settles a race). Call inside a transaction."""
    address = address.lower()
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sender:' || $1))", address)
    if await held_elsewhere(conn, org_id, address):
        raise errors.Conflict(VERIFIED_ELSEWHERE)
    updated = await conn.execute(
        """UPDATE sender_addresses SET verified_at = coalesce(verified_at, now()),
                  verified_by = coalesce(verified_by, $3)
           WHERE address = $1 AND org_id = $2""", address, org_id, method)
    if updated == "UPDATE 0":
        raise errors.Invalid("Save this address in your email settings first")


async def held_elsewhere(conn: asyncpg.Connection, org_id, address: str) -> bool:
    """Another org has proven this address."""
    return bool(await conn.fetchval(
        "SELECT 1 FROM sender_addresses WHERE address = $1 AND org_id <> $2 AND verified_at IS NOT NULL",
        address.lower(), org_id))


async def domain_held_elsewhere(conn: asyncpg.Connection, org_id, domain: str) -> bool:
    """Another org has proven an address at `domain`: the domain is evidently theirs, so a domain verified at
    Resend (which names no organization) proves nothing for this one; a confirmation link still can."""
    return bool(await conn.fetchval(
        """SELECT 1 FROM sender_addresses
           WHERE split_part(address, '@', 2) = $1 AND org_id <> $2 AND verified_at IS NOT NULL""",
        domain.lower(), org_id))


async def orgs_for_addresses(conn: asyncpg.Connection, addresses: list[str]) -> list:
    """The organizations that send from, or take replies at, one of these addresses (compared without case).

    Inbound mail names no organization: its recipient is the first link. An org that has proven the address
    is its one holder, whoever else claims it unproven; several claimants are narrowed by the caller to the
    one that wrote to the sender (storage.messages.reply_orgs), so a claim alone never vetoes a reply.
    """
    lowered = [address.lower() for address in addresses]
    proven = await conn.fetch(
        """SELECT DISTINCT org_id FROM sender_addresses
           WHERE address = ANY($1::text[]) AND verified_at IS NOT NULL""", lowered)
    if proven:
        return [row["org_id"] for row in proven]
    rows = await conn.fetch(
        """SELECT DISTINCT org_id FROM channel_configs
           WHERE channel = 'email' AND (lower(config->>'replyTo') = ANY($1::text[])
                                        OR lower(config->>'fromEmail') = ANY($1::text[]))""",
        lowered,
    )
    return [row["org_id"] for row in rows]


def format_sender(name: str | None, address: str) -> str:
    """`Name <address>`, the name quoted when it holds characters that mean something in an address header."""
    name = (name or "").strip()
    if not name:
        return address
    if SPECIALS & set(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"
