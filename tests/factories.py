"""Row factories for tables no route writes yet (calls, messages, numbers, accounts, usage).

Column names come from the test code; values go in as parameters. Each returns the inserted row.
The autouse clean_state fixture truncates every table after each test.
"""
from __future__ import annotations

import uuid


async def insert_row(pool, table: str, **values) -> dict:
    columns = ", ".join(values)
    placeholders = ", ".join(f"${index}" for index in range(1, len(values) + 1))
    row = await pool.fetchrow(
        f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING *", *values.values()
    )
    return dict(row)


async def insert_lead(pool, org_id, **values) -> dict:
    return await insert_row(pool, "leads", org_id=org_id, **values)


async def insert_campaign(pool, org_id, **values) -> dict:
    return await insert_row(pool, "campaigns", org_id=org_id, **{"name": "Campaign", **values})


async def insert_call(pool, org_id, **values) -> dict:
    defaults = {"direction": "outbound", "status": "completed"}
    return await insert_row(pool, "call_logs", org_id=org_id, **{**defaults, **values})


async def insert_message(pool, org_id, lead_id, **values) -> dict:
    defaults = {"channel": "email", "direction": "outbound", "status": "sent"}
    return await insert_row(pool, "messages", org_id=org_id, lead_id=lead_id, **{**defaults, **values})


async def insert_number(pool, org_id, **values) -> dict:
    defaults = {"number": "+1555" + str(uuid.uuid4().int)[:7]}
    return await insert_row(pool, "phone_numbers", org_id=org_id, **{**defaults, **values})


async def insert_telegram_account(pool, org_id, **values) -> dict:
    defaults = {"phone": "+380" + str(uuid.uuid4().int)[:9], "session": "secret-session"}
    return await insert_row(pool, "telegram_accounts", assigned_org_id=org_id, **{**defaults, **values})


async def insert_usage(pool, org_id, month, **values) -> dict:
    return await insert_row(pool, "usage", org_id=org_id, month=month, **values)


async def prove_sender(pool, address: str, org_id=None) -> None:
    """The org that claimed `address` (the only one, unless `org_id` names it) has proven it, as its confirmation
    link or its domain at Resend would (see test_sender_addresses.py): it may send from it."""
    updated = await pool.execute(
        """UPDATE sender_addresses SET verified_at = now(), verified_by = 'domain'
           WHERE address = lower($1) AND ($2::uuid IS NULL OR org_id = $2)""", address, org_id)
    assert updated == "UPDATE 1", updated
