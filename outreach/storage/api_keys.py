"""API keys: `tp_live_` + 64 hex, stored as a SHA-256 hash with a prefix and last four characters."""
from __future__ import annotations

import hashlib
import secrets

import asyncpg

from outreach.storage import sql

KEY_PREFIX = "tp_live_"
COLUMNS = "id, name, prefix, last4, created_at, last_used_at, created_by, expires_at"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX) and len(token) == len(KEY_PREFIX) + 64


async def create_key(conn: asyncpg.Connection, org_id, name: str, created_by: str | None = None,
                     expires_at=None) -> tuple[dict, str]:
    """A new key, shown once; `created_by` is the Clerk user it acts for, `expires_at` when it stops working."""
    key = new_key()
    row = await conn.fetchrow(
        f"""INSERT INTO api_keys (org_id, name, key_hash, prefix, last4, created_by, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}""",
        org_id, name, hash_key(key), key[:12], key[-4:], created_by, expires_at,
    )
    return dict(row), key


async def list_keys(conn: asyncpg.Connection, org_id) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id DESC", org_id
    )
    return [dict(row) for row in rows]


async def delete_key(conn: asyncpg.Connection, org_id, key_id) -> None:
    await sql.delete_owned(conn, "api_keys", key_id, org_id, missing="Key not found")


async def revoke_member_keys(conn: asyncpg.Connection, clerk_org_id: str, user_id: str) -> int:
    """Delete the keys a member created in a Clerk organization (they left it); the number deleted."""
    status = await conn.execute(
        """DELETE FROM api_keys USING organizations
           WHERE organizations.id = api_keys.org_id AND organizations.clerk_org_id = $1 AND api_keys.created_by = $2""",
        clerk_org_id, user_id,
    )
    return int(status.split()[-1])


async def key_owner(conn: asyncpg.Connection, key: str) -> dict | None:
    """{org_id, created_by} of a live (unexpired) key, or None; marks the key used (at most once a minute,
    to spare writes)."""
    row = await conn.fetchrow(
        """SELECT id, org_id, created_by, last_used_at > now() - interval '1 minute' AS fresh FROM api_keys
           WHERE key_hash = $1 AND (expires_at IS NULL OR expires_at > now())""",
        hash_key(key),
    )
    if row is None:
        return None
    if not row["fresh"]:
        await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", row["id"])
    return {"org_id": row["org_id"], "created_by": row["created_by"]}
