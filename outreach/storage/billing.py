"""An organization's subscription: its plan, its Stripe customer and subscription, and when they last changed.

`plan_updated_at` is the time of the provider event that set the state (a Stripe event's `created`, a
LiqPay callback's date): a change stamped earlier than the stored state is refused, so an event delivered
late or retried out of order never rolls the plan back.
"""
from __future__ import annotations

import datetime

import asyncpg

from outreach.runtime import errors
from outreach.storage import number_release

STATE = """SELECT o.id, o.name, o.plan::text AS plan, o.plan_updated_at, o.stripe_customer_id,
                  o.stripe_subscription_id, u.email AS owner_email
           FROM organizations o LEFT JOIN users u ON u.id = o.owner_id"""
CHANGEABLE = ("plan", "stripe_customer_id", "stripe_subscription_id")


async def get_state(conn: asyncpg.Connection, org_id, lock: bool = False) -> dict | None:
    """The org's billing state; `lock` holds its row to the end of the transaction (webhooks apply one at a time)."""
    row = await conn.fetchrow(STATE + " WHERE o.id = $1" + (" FOR UPDATE OF o" if lock else ""), org_id)
    return dict(row) if row else None


async def state_for_customer(conn: asyncpg.Connection, customer_id: str, lock: bool = False) -> dict | None:
    """The org that owns a Stripe customer (a webhook names the customer, not the org)."""
    row = await conn.fetchrow(STATE + " WHERE o.stripe_customer_id = $1" + (" FOR UPDATE OF o" if lock else ""),
                              customer_id)
    return dict(row) if row else None


async def lock_customer_creation(conn: asyncpg.Connection, org_id) -> None:
    """Serialize "create this org's Stripe customer" until the transaction ends, without locking the org row
    (auth and webhooks keep writing it meanwhile)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('stripe_customer'), hashtext($1::text))", str(org_id))


async def save_customer(conn: asyncpg.Connection, org_id, customer_id: str) -> str:
    """Store the customer id unless one is stored already; return the one stored."""
    stored = await conn.fetchval(
        """UPDATE organizations SET stripe_customer_id = coalesce(stripe_customer_id, $2)
           WHERE id = $1 RETURNING stripe_customer_id""",
        org_id, customer_id,
    )
    if stored is None:
        raise errors.NotFound("Organization not found")
    return stored


async def apply_change(conn: asyncpg.Connection, org_id, at: datetime.datetime, changes: dict, *,
                       grace_days: int) -> bool:
    """Set the plan and/or Stripe ids as of `at`; False (nothing written) when the stored state is newer.
    The org's phone numbers follow the plan: a lapse stops them and releases them after `grace_days`."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise ValueError(f"not billing columns: {sorted(unknown)}")
    columns = list(changes)
    assignments = ", ".join(
        f"{column} = ${index}" + ("::plan" if column == "plan" else "") for index, column in enumerate(columns, 3)
    )
    updated = await conn.fetchval(
        f"""UPDATE organizations SET {assignments}{', ' if assignments else ''}plan_updated_at = $2
            WHERE id = $1 AND (plan_updated_at IS NULL OR plan_updated_at <= $2) RETURNING id""",
        org_id, at, *(changes[column] for column in columns),
    )
    if updated is not None and "plan" in changes:
        await number_release.follow_plan(conn, org_id, changes["plan"], grace_days)
    return updated is not None
