"""The bulk lead import: chunks COPYed into a staging table, then one statement that skips duplicates, all or nothing.

Memory is bounded by one chunk whatever the file's length: duplicates inside the file and against the
organization's leads are found by PostgreSQL. The organization's lead quota is checked under the same lock
as single creates (storage.leads), so concurrent imports and creates cannot pass it together.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import asyncpg

from outreach.runtime import errors
from outreach.runtime.policy import LEAD_TEXT_FIELDS
from outreach.storage import leads

FIELDS = ", ".join(LEAD_TEXT_FIELDS)
STAGING = ("CREATE TEMP TABLE lead_import (row_number integer, "
           + ", ".join(f"{field} text" for field in LEAD_TEXT_FIELDS) + ") ON COMMIT DROP")


def first_in_file(column: str) -> str:
    """The row number of the file's first row with this row's value of `column` (its own when it has none)."""
    return (f"CASE WHEN r.{column} IS NULL THEN r.row_number "
            f"ELSE min(r.row_number) OVER (PARTITION BY lower(r.{column})) END AS first_{column}")


def not_in_org(column: str) -> str:
    return (f"NOT (r.{column} IS NOT NULL AND EXISTS (SELECT 1 FROM leads l WHERE l.org_id = $1 "
            f"AND lower(l.{column}) = lower(r.{column}) AND l.{column} IS NOT NULL))")


# A row is imported when it is the first in the file with each of its email, phone and Telegram username, and
# the organization has no lead with any of them (email and username in any case; phones are E.164 already).
INSERT_NEW = f"""
INSERT INTO leads (org_id, {FIELDS})
SELECT $1, {FIELDS}
FROM (SELECT r.*, {first_in_file("email")}, {first_in_file("phone")}, {first_in_file("telegram_username")}
      FROM lead_import r) r
WHERE r.row_number = r.first_email AND r.row_number = r.first_phone AND r.row_number = r.first_telegram_username
  AND {not_in_org("email")}
  AND NOT (r.phone IS NOT NULL AND EXISTS (
          SELECT 1 FROM leads l WHERE l.org_id = $1 AND l.phone = r.phone AND l.phone IS NOT NULL))
  AND {not_in_org("telegram_username")}
ORDER BY r.row_number
"""


async def import_chunks(conn: asyncpg.Connection, org_id, chunks: AsyncIterator[list[dict]], quota: tuple,
                        on_progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """COPY each chunk of rows into staging, then insert the new ones; returns (rows copied, rows imported).

    Call inside a transaction. `quota` is (plan, the org's lead limit or None): an import that would take the
    org past it raises errors.RateLimited, and the transaction keeps nothing.
    """
    plan, limit = quota
    held = await leads.lock_for_quota(conn, org_id, limit)
    await conn.execute(STAGING)
    copied = 0
    async for chunk in chunks:
        records = [(row["row_number"], *(row.get(field) for field in LEAD_TEXT_FIELDS)) for row in chunk]
        await conn.copy_records_to_table("lead_import", records=records)
        copied += len(records)
        if on_progress is not None:
            on_progress(copied)
    if not copied:
        return 0, 0
    imported = int((await conn.execute(INSERT_NEW, org_id)).split()[-1])
    if held is not None and held + imported > limit:
        raise leads.quota_reached(plan, limit, held, imported)
    if copied >= 10_000:
        await conn.execute("ANALYZE leads")  # plans cached on an emptier table would scan it whole
    return copied, imported
