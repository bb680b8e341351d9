"""The do-not-contact list of each organization, and the checks every send path makes against it.

A send is decided when its attempt (or pending message) row is written. Writers of the list take the
organization's suppression lock exclusively; the send paths take it shared, then look at the list in the
next statement, within the transaction that writes the attempt. So a suppression and a send are ordered:
either the attempt committed first (it was sent before the suppression), or the send path waited for the
suppression to commit and saw it (nothing is written, nothing sent).
"""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors, optout
from outreach.runtime.models import Page
from outreach.storage import sql

LOCK_SPACE = 1201  # the first key of the two-key advisory lock (the org's hash is the second)
COLUMNS = "id, type, value, source, created_at"
FILTER = "org_id = $1 AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR value ILIKE $3)"
SUPPRESSED = "Lead is on the do-not-contact list"
ENDED = "(CASE WHEN cl.reached THEN 'sent' ELSE 'skipped' END)::lead_state"  # an earlier step reached it: sent

# A lead matches when any of its contacts, normalised as the list is, is on its organization's list. Usernames are
# stored in their one form (runtime.usernames; migration 015 for older rows); lower() matches the leads' index.
LEAD_SUPPRESSED = r"""(
    EXISTS (SELECT 1 FROM suppressions s WHERE s.org_id = l.org_id AND s.type = 'email' AND s.value = lower(l.email))
    OR EXISTS (SELECT 1 FROM suppressions s WHERE s.org_id = l.org_id AND s.type = 'phone'
               AND s.value = '+' || regexp_replace(regexp_replace(l.phone, '\D', '', 'g'), '^00', ''))
    OR EXISTS (SELECT 1 FROM suppressions s WHERE s.org_id = l.org_id AND s.type = 'telegram'
               AND s.value = lower(l.telegram_username)))"""


async def lock_list(conn: asyncpg.Connection, org_id, *, shared: bool) -> None:
    """Call inside a transaction: held until it ends."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await conn.execute(f"SELECT {function}($1, hashtext($2::text))", LOCK_SPACE, str(org_id))


# --- the list ----------------------------------------------------------------------------------------

async def add_entries(conn: asyncpg.Connection, org_id, entries: list[tuple[str, str]], source: str) -> list[dict]:
    """Suppress normalised (type, value) pairs; the rows, an entry already listed keeping its time and its source
    (unless the person now opted out themselves: that source replaces the org's, so it cannot be deleted).
    Call inside a transaction."""
    unique = list(dict.fromkeys(entries))
    if not unique:
        return []
    await lock_list(conn, org_id, shared=False)
    rows = await conn.fetch(
        f"""INSERT INTO suppressions (org_id, type, value, source)
            SELECT $1, u.type, u.value, $4 FROM unnest($2::text[], $3::text[]) AS u(type, value)
            ON CONFLICT ON CONSTRAINT suppressions_once DO UPDATE  -- the person's own opt-out outranks the org's entry
            SET source = CASE WHEN EXCLUDED.source = ANY($5::text[]) AND suppressions.source <> ALL($5::text[])
                              THEN EXCLUDED.source ELSE suppressions.source END
            RETURNING {COLUMNS}, (xmax = 0) AS added""",
        org_id, [kind for kind, _ in unique], [value for _, value in unique], source, list(optout.PERMANENT_SOURCES),
    )
    return sql.as_dicts(rows)


async def suppress(conn: asyncpg.Connection, org_id, kind: str, value: str | None, source: str) -> bool:
    """One contact from a provider event or a reply (normalised here); False when the value is not valid."""
    try:
        entry = (kind, optout.normalise(kind, value))
    except errors.Invalid:
        return False
    await add_entries(conn, org_id, [entry], source)
    return True


async def list_suppressions(conn: asyncpg.Connection, org_id, page: Page, *, kind: str | None, search: str | None):
    pattern = f"%{sql.escape_like(search.lower())}%" if search else None
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM suppressions WHERE {FILTER} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
        org_id, kind, pattern, page.limit, page.offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM suppressions WHERE {FILTER}", org_id, kind, pattern)
    return sql.as_dicts(rows), total


async def delete_suppression(conn: asyncpg.Connection, org_id, suppression_id) -> None:
    """NotFound for another org's entry; Conflict for an opt-out the person made (optout.PERMANENT_SOURCES)."""
    deleted = await conn.fetchval(
        "DELETE FROM suppressions WHERE id = $1 AND org_id = $2 AND source <> ALL($3::text[]) RETURNING id",
        suppression_id, org_id, list(optout.PERMANENT_SOURCES))
    if deleted is not None:
        return
    source = await conn.fetchval("SELECT source FROM suppressions WHERE id = $1 AND org_id = $2",
                                 suppression_id, org_id)
    if source is None:
        raise errors.NotFound("Suppression not found")
    raise errors.Conflict(f"This entry is the person's own opt-out ({source}): it is theirs to lift, not the "
                          "organization's (CAN-SPAM, GDPR art. 21), so it cannot be deleted")


# --- the checks on the send paths --------------------------------------------------------------------

INELIGIBLE = f"""
WITH audience AS (
    SELECT ARRAY(SELECT jsonb_array_elements_text(
                     CASE WHEN jsonb_typeof(settings #> '{{audience,statuses}}') = 'array'
                               AND jsonb_array_length(settings #> '{{audience,statuses}}') > 0
                          THEN settings #> '{{audience,statuses}}' ELSE '["new", "contacted"]'::jsonb END)) AS statuses
    FROM campaigns WHERE id = $1
), verdict AS (  -- the audience admits leads to the first step; a later step follows who entered
    SELECT l.id, CASE WHEN {LEAD_SUPPRESSED} THEN '{SUPPRESSED}'
                      WHEN l.status = 'rejected' THEN 'Lead is rejected'
                      WHEN NOT (l.status::text = ANY(a.statuses)
                                OR (c.step > 0 AND l.status IN ('contacted', 'qualified')))
                          THEN 'Lead is ' || l.status::text || ', outside the campaign''s audience'
                 END AS reason
    FROM leads l JOIN campaign_leads c ON c.campaign_id = $1 AND c.lead_id = l.id CROSS JOIN audience a
    WHERE l.id = ANY($2::uuid[]) AND c.lead_id = ANY($2::uuid[])  -- the batch's rows by key, not the campaign's
)
SELECT id, reason FROM verdict WHERE reason IS NOT NULL
"""


async def ineligible(conn: asyncpg.Connection, campaign_id, lead_ids: list) -> dict:
    """Why each of these claimed leads may not be contacted by the campaign ({lead_id: reason}, only those):
    suppressed, rejected, or a status outside its audience (runtime.optout.audience)."""
    if not lead_ids:
        return {}
    return {row["id"]: row["reason"] for row in await conn.fetch(INELIGIBLE, campaign_id, lead_ids)}


async def check_lead(conn: asyncpg.Connection, org_id, lead_id) -> None:
    """For a one-off send to a lead (email/send): Conflict when the lead is suppressed. Call inside the
    transaction that writes the send."""
    await lock_list(conn, org_id, shared=True)
    if await conn.fetchval(f"SELECT {LEAD_SUPPRESSED} FROM leads l WHERE l.id = $1 AND l.org_id = $2",
                           lead_id, org_id):
        raise errors.Conflict(f"{SUPPRESSED}: it is not contacted")


async def check_address(conn: asyncpg.Connection, org_id, kind: str, value: str) -> None:
    """Conflict when this contact (any form of it) is on the org's list."""
    try:
        normalised = optout.normalise(kind, value)
    except errors.Invalid:
        return
    await lock_list(conn, org_id, shared=True)
    if await conn.fetchval("SELECT 1 FROM suppressions WHERE org_id = $1 AND type = $2 AND value = $3",
                           org_id, kind, normalised):
        raise errors.Conflict(f"{value} is on the do-not-contact list: it is not contacted")
