"""What a lead's answer changes: its remaining steps stop, its campaigns mark it replied, and its status
follows the conversation (never over a status a user set). Telegram replies are stored here too."""
from __future__ import annotations

import asyncpg

from outreach.runtime import optout, replies
from outreach.storage import db, suppressions, timers

REPLIED = "Lead replied"

MARK_REPLIED = """
WITH marked AS (
    UPDATE campaign_leads cl SET replied_at = coalesce(cl.replied_at, now())
    WHERE cl.org_id = $1 AND cl.lead_id = $2
      AND EXISTS (SELECT 1 FROM attempts a WHERE a.campaign_id = cl.campaign_id AND a.lead_id = cl.lead_id
                  AND a.outcome IN ('sent', 'unknown'))
    RETURNING cl.campaign_id
)
UPDATE leads l
SET status = CASE WHEN EXISTS (SELECT 1 FROM campaigns c WHERE c.id IN (SELECT campaign_id FROM marked)
                               AND c.settings ->> 'onReply' = 'qualified')
                  THEN 'qualified' ELSE 'contacted' END::lead_status
WHERE l.id = $2 AND l.org_id = $1 AND l.status IN ('new', 'contacted') AND l.status_set_by IS NULL
"""


async def take_reply(conn: asyncpg.Connection, org_id, lead_id, reason: str = REPLIED) -> None:
    """A verified answer from the lead: its remaining steps end in every campaign of the org, the campaigns
    that reached it mark it replied, and it becomes `contacted`, or `qualified` when one of those campaigns
    says so (`settings.onReply`). Call inside a transaction."""
    await timers.stop_lead(conn, org_id, lead_id, reason)
    await conn.execute(MARK_REPLIED, org_id, lead_id)


# --- Telegram ----------------------------------------------------------------------------------------

INBOUND = """
WITH account AS (
    SELECT id, assigned_org_id AS org_id FROM telegram_accounts WHERE id = $1 AND assigned_org_id IS NOT NULL
), peer_leads AS (  -- every lead row this account wrote to under the username it resolved to this peer
    SELECT l.id, l.org_id, l.telegram_username FROM account a
    JOIN telegram_peers p ON p.account_id = a.id AND p.user_id = $2
    JOIN leads l ON l.org_id = a.org_id AND lower(l.telegram_username) = p.username
), original AS (  -- the last message each was sent: only a lead we contacted answers us
    SELECT DISTINCT ON (l.id) l.id AS lead_id, m.id, m.campaign_id FROM peer_leads l JOIN messages m ON m.lead_id = l.id
    WHERE m.org_id = l.org_id AND m.channel = 'telegram' AND m.direction = 'outbound' AND m.status <> 'failed'
    ORDER BY l.id, m.created_at DESC, m.id DESC
), replied AS (
    UPDATE messages SET status = 'replied' WHERE id IN (SELECT id FROM original)
)
INSERT INTO messages (org_id, lead_id, campaign_id, channel, direction, status, content, metadata, provider_id,
                      parent_id)
SELECT l.org_id, l.id, o.campaign_id, 'telegram', 'inbound', 'delivered', $4,
       jsonb_build_object('telegramUsername', l.telegram_username, 'accountId', $1::text), $3, o.id
FROM peer_leads l JOIN original o ON o.lead_id = l.id
WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.org_id = l.org_id AND m.lead_id = l.id AND m.provider_id = $3
                  AND m.direction = 'inbound')
RETURNING id, org_id, lead_id, metadata ->> 'telegramUsername' AS username
"""


async def record_telegram_reply(conn: asyncpg.Connection, account_id, peer_id: int, message_id: int,
                                text: str | None) -> dict | None:
    """An incoming private message to one of our accounts. From a lead the account wrote to: stored as the
    inbound message of every lead row it wrote to under that peer's username, taken as their reply, and a stop
    request suppresses the username. Anything else is ignored (None). A message handled before is not applied
    twice. Call inside a transaction."""
    await advance_inbox(conn, account_id, message_id)
    rows = await conn.fetch(INBOUND, account_id, peer_id, f"in:{peer_id}:{message_id}", text or "")
    if not rows:
        return None
    org_id = rows[0]["org_id"]
    for row in rows:
        await take_reply(conn, org_id, row["lead_id"])
    stop = optout.is_stop_request(text)
    if stop:
        await suppressions.suppress(conn, org_id, "telegram", rows[0]["username"], "reply")
    return {**dict(rows[0]), "stop": stop, "lead_ids": [row["lead_id"] for row in rows]}


async def advance_inbox(conn: asyncpg.Connection, account_id, message_id: int) -> None:
    await conn.execute(
        """INSERT INTO telegram_inbox (account_id, last_message_id) VALUES ($1, $2)
           ON CONFLICT (account_id) DO UPDATE
           SET last_message_id = greatest(telegram_inbox.last_message_id, EXCLUDED.last_message_id), updated_at = now()""",
        account_id, message_id,
    )


async def last_seen(conn: asyncpg.Connection, account_id) -> int:
    """The highest incoming message id the account has handled (0: none yet)."""
    return await conn.fetchval("SELECT last_message_id FROM telegram_inbox WHERE account_id = $1", account_id) or 0


# --- voice -------------------------------------------------------------------------------------------

DO_NOT_CALL = "Lead asked not to be contacted again"


async def apply_call_report(conn: asyncpg.Connection, org_id, call_id, *, score=None,
                            do_not_call: bool = False) -> dict:
    """What the voice agent's end-of-call report changes for the lead: a do-not-call request suppresses the
    number called (and stops the lead's remaining steps); a score at or above the campaign's
    `settings.qualifyScore` qualifies it, unless a user set its status. Call inside a transaction."""
    call = await conn.fetchrow(
        """SELECT cl.lead_id, cl.to_number, coalesce(c.settings, '{}'::jsonb) AS settings
           FROM call_logs cl LEFT JOIN campaigns c ON c.id = cl.campaign_id
           WHERE cl.id = $1 AND cl.org_id = $2""",
        call_id, org_id,
    )
    if call is None or call["lead_id"] is None:
        return {"qualified": False, "suppressed": False}
    suppressed = False
    if do_not_call:
        suppressed = await suppressions.suppress(conn, org_id, "phone", call["to_number"], "do_not_call")
        await timers.stop_lead(conn, org_id, call["lead_id"], DO_NOT_CALL)
    qualified = replies.qualifies(score, call["settings"]) and await set_runtime_status(
        conn, org_id, call["lead_id"], "qualified", ("new", "contacted"))
    return {"qualified": qualified, "suppressed": suppressed}


async def set_runtime_status(conn: asyncpg.Connection, org_id, lead_id, status: str, from_statuses) -> bool:
    """The runtime moves a lead's status only from `from_statuses`, and never over a status a user set."""
    result = await conn.execute(
        """UPDATE leads SET status = $3::lead_status
           WHERE id = $1 AND org_id = $2 AND status::text = ANY($4::text[]) AND status_set_by IS NULL""",
        lead_id, org_id, status, list(from_statuses),
    )
    return result != "UPDATE 0"


class PgInbox:
    """What one account's TelegramInbox reads and writes (actors.telegram_inbox.InboxStore)."""

    def __init__(self, pool: asyncpg.Pool, account_id):
        self.pool = pool
        self.account_id = account_id

    async def last_seen(self) -> int:
        async with db.connection(self.pool) as conn:
            return await last_seen(conn, self.account_id)

    async def record(self, peer_id: int, message_id: int, text: str) -> dict | None:
        async with db.transaction(self.pool) as conn:
            return await record_telegram_reply(conn, self.account_id, peer_id, message_id, text)

    async def listens(self) -> bool:
        async with db.connection(self.pool) as conn:
            return await account_listens(conn, self.account_id)


async def account_listens(conn: asyncpg.Connection, account_id) -> bool:
    """An account reads its replies while it can write: active (or warming up) and given to an organization."""
    return bool(await conn.fetchval(
        """SELECT 1 FROM telegram_accounts WHERE id = $1 AND assigned_org_id IS NOT NULL
           AND status IN ('active', 'warming_up')""", account_id))


async def listening_accounts(pool: asyncpg.Pool) -> list:
    """The accounts whose actors read replies: those that may write, with a real session."""
    async with db.connection(pool) as conn:
        rows = await conn.fetch(
        """SELECT id FROM telegram_accounts WHERE assigned_org_id IS NOT NULL AND status IN ('active', 'warming_up')
           AND session <> 'sandbox' ORDER BY id""")
    return [row["id"] for row in rows]
