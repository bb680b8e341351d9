"""Email senders: the address an organization's email goes out from, and the organization an address belongs to.

Both read the org's email channel config (`fromEmail`, `fromName`, `replyTo`, validated when saved).
"""
from __future__ import annotations

import asyncpg

SPECIALS = set('()<>[]:;@\\,."')


async def email_sender(conn: asyncpg.Connection, org_id) -> dict | None:
    """{"from": "Name <address>", "reply_to": address} from the org's email settings; None when it has none."""
    config = await conn.fetchval(
        "SELECT config FROM channel_configs WHERE org_id = $1 AND channel = 'email'", org_id
    )
    if not isinstance(config, dict) or not config.get("fromEmail"):
        return None
    return {"from": format_sender(config.get("fromName"), config["fromEmail"]),
            "reply_to": config.get("replyTo") or config["fromEmail"]}


async def orgs_for_addresses(conn: asyncpg.Connection, addresses: list[str]) -> list:
    """The organizations that send from, or take replies at, one of these addresses (compared without case).

    Inbound mail names no organization: its recipient is the only link, and the caller must refuse
    to pick when several organizations share an address.
    """
    rows = await conn.fetch(
        """SELECT DISTINCT org_id FROM channel_configs
           WHERE channel = 'email' AND (lower(config->>'replyTo') = ANY($1::text[])
                                        OR lower(config->>'fromEmail') = ANY($1::text[]))""",
        [address.lower() for address in addresses],
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
