"""Messages: one row per Telegram, email or voice message, in either direction."""
from __future__ import annotations

import asyncpg

from outreach.runtime import errors
from outreach.runtime.models import Channel, Page
from outreach.storage import runs, sql

LIST_COLUMNS = "id, lead_id, direction, content, status, metadata, parent_id, created_at"
FILTER = "org_id = $1 AND channel = $2 AND ($3::uuid IS NULL OR lead_id = $3)"


async def list_messages(conn: asyncpg.Connection, org_id, channel: Channel, page: Page, *, lead_id=None):
    """A page of the org's messages on one channel, newest first, optionally of one lead."""
    rows = await conn.fetch(
        f"SELECT {LIST_COLUMNS} FROM messages WHERE {FILTER} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
        org_id, channel.value, lead_id, page.limit, page.offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM messages WHERE {FILTER}", org_id, channel.value, lead_id)
    return sql.as_dicts(rows), total


# --- email sent from the dashboard, and what Resend's webhook says of it --------------------------

STATUS_ORDER = ["pending", "sent", "delivered", "read", "replied"]
SENT_COLUMNS = "id, lead_id, campaign_id, status, metadata, provider_id, created_at"


async def start_email(conn: asyncpg.Connection, org_id, lead_id, *, campaign_id, content: str, metadata: dict,
                      plan_limits: dict | None = None) -> dict:
    """Count the email against the plan (limits from Settings.plan_limits) and write it as `pending`, before
    the provider is called. Call inside a transaction: over the plan's limit nothing is written (RateLimited)."""
    plan = await conn.fetchval("SELECT plan::text FROM organizations WHERE id = $1", org_id)
    refused, reason = await runs.reserve_usage(conn, org_id, plan, "email", [lead_id], plan_limits)
    if refused:
        raise errors.RateLimited(reason)
    row = await conn.fetchrow(
        f"""INSERT INTO messages (org_id, lead_id, campaign_id, channel, direction, status, content, metadata)
            VALUES ($1, $2, $3, 'email', 'outbound', 'pending', $4, $5) RETURNING {SENT_COLUMNS}""",
        org_id, lead_id, campaign_id, content, metadata,
    )
    return dict(row)


async def finish_email(conn: asyncpg.Connection, org_id, message_id, *, sent: bool, provider_id: str | None,
                       error: str | None, month) -> dict | None:
    """Record the provider's answer; an email that was not sent gives its usage back (of `month`).
    None when the row is gone (its lead was deleted meanwhile): the send still happened."""
    row = await conn.fetchrow(
        f"""WITH finished AS (
                UPDATE messages SET status = CASE WHEN $3 THEN 'sent' ELSE 'failed' END::message_status,
                                    provider_id = $4,
                                    metadata = metadata || jsonb_strip_nulls(jsonb_build_object(
                                        'resendId', $4::text, 'error', $5::text))
                WHERE id = $2 AND org_id = $1 AND status = 'pending'
                RETURNING {SENT_COLUMNS}
            ), refund AS (
                UPDATE usage SET emails = greatest(emails - 1, 0)
                WHERE org_id = $1 AND month = $6 AND NOT $3 AND EXISTS (SELECT 1 FROM finished)
                RETURNING org_id
            )
            SELECT * FROM finished""",
        org_id, message_id, sent, provider_id, error, month,
    )
    return dict(row) if row else None


async def has_email(conn: asyncpg.Connection, org_id, provider_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM messages WHERE org_id = $1 AND provider_id = $2 AND channel = 'email'", org_id, provider_id))


async def advance_status(conn: asyncpg.Connection, org_id, provider_id: str, status: str,
                         error: str | None = None) -> bool:
    """Move an outbound email forward (pending < sent < delivered < read < replied), never back; `failed`
    only from pending or sent. Webhooks arrive late, twice and out of order: a stale one changes nothing."""
    result = await conn.execute(
        """UPDATE messages SET status = $3::message_status,
                               metadata = CASE WHEN $5::text IS NULL THEN metadata
                                               ELSE metadata || jsonb_build_object('error', $5::text) END
           WHERE org_id = $1 AND provider_id = $2 AND channel = 'email' AND direction = 'outbound'
             AND CASE WHEN $3 = 'failed' THEN status IN ('pending', 'sent')
                      ELSE array_position($4::text[], status::text) < array_position($4::text[], $3) END""",
        org_id, provider_id, status, STATUS_ORDER, error,
    )
    return result != "UPDATE 0"


THREADED_ORGS = """SELECT DISTINCT org_id FROM messages WHERE org_id = ANY($1::uuid[]) AND provider_id = ANY($2::text[])
                   AND channel = 'email' AND direction = 'outbound'"""
EMAILED_ORGS = """SELECT DISTINCT m.org_id FROM leads l JOIN messages m ON m.lead_id = l.id AND m.org_id = l.org_id
                  WHERE l.org_id = ANY($1::uuid[]) AND lower(l.email) = $2 AND m.channel = 'email'
                    AND m.direction = 'outbound' AND m.status <> 'failed'"""
HOLDING_ORGS = "SELECT DISTINCT org_id FROM leads WHERE org_id = ANY($1::uuid[]) AND lower(email) = $2"


async def reply_orgs(conn: asyncpg.Connection, org_ids: list, from_email: str, thread_ids: list[str]) -> list:
    """Of `org_ids` (those claiming the recipient address), the ones a reply from `from_email` answers, most
    certain first: the one whose email it names (In-Reply-To, References), those that emailed the sender, those
    with a lead at it. So a claim by an organization that never wrote to the sender does not make the reply
    ambiguous. All of them when none ever knew the sender."""
    if len(org_ids) < 2:
        return org_ids
    for query, value in ((THREADED_ORGS, thread_ids), (EMAILED_ORGS, from_email.lower()),
                         (HOLDING_ORGS, from_email.lower())):
        found = [row["org_id"] for row in await conn.fetch(query, org_ids, value)]
        if found:
            return found
    return org_ids


RECORD_REPLY = """
WITH matching AS (
    SELECT id, campaign_id, created_at FROM leads WHERE org_id = $1 AND lower(email) = lower($2)
), contacted AS (  -- every lead row of the address the org wrote to (one person may be several leads)
    SELECT id, campaign_id FROM matching l
    WHERE EXISTS (SELECT 1 FROM messages m WHERE m.org_id = $1 AND m.lead_id = l.id AND m.direction = 'outbound'
                  AND m.status <> 'failed')
), target AS (  -- else the newest lead with the address, so the reply is still kept
    SELECT id, campaign_id FROM contacted
    UNION ALL
    (SELECT id, campaign_id FROM matching WHERE NOT EXISTS (SELECT 1 FROM contacted)
     ORDER BY created_at DESC, id DESC LIMIT 1)
), original AS (  -- the last email each of them was sent
    SELECT DISTINCT ON (t.id) t.id AS lead_id, m.id, m.campaign_id FROM target t JOIN messages m ON m.lead_id = t.id
    WHERE m.org_id = $1 AND m.channel = 'email' AND m.direction = 'outbound' AND m.status <> 'failed'
    ORDER BY t.id, m.created_at DESC, m.id DESC
), replied AS (
    UPDATE messages SET status = 'replied' WHERE org_id = $1 AND id IN (SELECT id FROM original) AND $6
)
INSERT INTO messages (org_id, lead_id, campaign_id, channel, direction, status, content, metadata,
                      provider_id, parent_id)
SELECT $1, t.id, coalesce(o.campaign_id, t.campaign_id), 'email', 'inbound', 'delivered', $3, $4, $5, o.id
FROM target t LEFT JOIN original o ON o.lead_id = t.id
RETURNING id, lead_id, parent_id
"""


async def record_reply(conn: asyncpg.Connection, org_id, from_email: str, *, subject: str, content: str,
                       provider_id: str | None, verified: bool = True, checks: dict | None = None) -> list[dict]:
    """An inbound email from one of the org's leads (address compared without case): logged on every lead of the
    address the org wrote to (else on the newest lead with it), and the last email sent to each marked
    `replied`. Empty when no lead of the org has this address. A reply whose sender is not `verified` is logged
    with that flag and its `checks`, and changes no status."""
    metadata = {"subject": subject, "fromEmail": from_email, "verified": verified,
                **({"checks": checks} if checks else {})}
    rows = await conn.fetch(RECORD_REPLY, org_id, from_email, content, metadata, provider_id, verified)
    return sql.as_dicts(rows)
