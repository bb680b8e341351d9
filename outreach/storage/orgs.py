"""Users and organizations: the tenants every other table is scoped to."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors


async def ensure_user(conn: asyncpg.Connection, user_id: str, email: str | None, name: str | None) -> None:
    await conn.execute(
        """INSERT INTO users (id, email, name) VALUES ($1, coalesce($2, ''), $3)
           ON CONFLICT (id) DO UPDATE SET email = coalesce(nullif($2, ''), users.email),
                                          name = coalesce($3, users.name)
           WHERE users.email IS DISTINCT FROM coalesce(nullif($2, ''), users.email)
              OR users.name IS DISTINCT FROM coalesce($3, users.name)""",
        user_id, email, name,
    )


async def personal_org(conn: asyncpg.Connection, user_id: str):
    """The user's one personal organization, created on first use; safe under concurrent first requests."""
    org_id = await conn.fetchval(
        """INSERT INTO organizations (name, kind, owner_id) VALUES ('Personal', 'personal', $1)
           ON CONFLICT (owner_id) WHERE kind = 'personal' DO NOTHING RETURNING id""",
        user_id,
    )
    if org_id is None:
        org_id = await conn.fetchval(
            "SELECT id FROM organizations WHERE owner_id = $1 AND kind = 'personal'", user_id
        )
    return org_id


async def clerk_org(conn: asyncpg.Connection, clerk_org_id: str, slug: str | None, user_id: str):
    return await conn.fetchval(
        """INSERT INTO organizations (name, kind, owner_id, clerk_org_id) VALUES ($1, 'clerk', $2, $3)
           ON CONFLICT (clerk_org_id) DO UPDATE SET clerk_org_id = EXCLUDED.clerk_org_id RETURNING id""",
        slug or clerk_org_id, user_id, clerk_org_id,
    )


async def local_org(conn: asyncpg.Connection, name: str):
    """A self-hosted organization reached with API keys, created when absent."""
    name = name.strip()
    if not name:
        raise errors.Invalid("Organization name is required")
    return await conn.fetchval(
        """INSERT INTO organizations (name, kind) VALUES ($1, 'local')
           ON CONFLICT (name) WHERE kind = 'local' DO UPDATE SET name = EXCLUDED.name RETURNING id""",
        name,
    )


async def get_org(conn: asyncpg.Connection, org_id) -> dict:
    row = await conn.fetchrow("SELECT * FROM organizations WHERE id = $1", org_id)
    if row is None:
        raise errors.NotFound("Organization not found")
    return dict(row)


async def complete_onboarding(conn: asyncpg.Connection, org_id) -> None:
    await conn.execute("UPDATE organizations SET onboarding_done = true WHERE id = $1", org_id)


async def set_plan(conn: asyncpg.Connection, org_id, plan: str) -> None:
    await conn.execute("UPDATE organizations SET plan = $2, plan_updated_at = now() WHERE id = $1", org_id, plan)


async def add_sandbox_channels(conn: asyncpg.Connection, org_id, accounts: int, daily_limit: int) -> None:
    """Simulated Telegram accounts and a phone number, labelled sandbox, for demos and benchmarks."""
    suffix = str(org_id).replace("-", "")[:10]
    for index in range(accounts):
        await conn.execute(
            """INSERT INTO telegram_accounts (phone, session, username, display_name, status, assigned_org_id,
                                              max_daily_messages)
               VALUES ($1, 'sandbox', $2, 'Sandbox account', 'active', $3, $4)""",
            f"sandbox-{suffix}-{index}", f"sandbox_agent_{index}", org_id, daily_limit,
        )
    await conn.execute(
        "INSERT INTO phone_numbers (org_id, number, label, provider, max_concurrent_calls) "
        "VALUES ($1, $2, 'Sandbox line', 'sandbox', 20)",
        org_id, f"sandbox-{suffix}",
    )
