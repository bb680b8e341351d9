"""Execution state of campaigns: claims, attempts, outcomes, usage. Each function is one round trip.

Batched on purpose: one statement claims a batch, one writes a batch's attempts with their usage
reservation, one records a batch's outcomes (attempts, lead states, lead statuses, messages, call
logs, usage refunds) with data-modifying CTEs.
"""
from __future__ import annotations

import datetime

import asyncpg

from outreach.runtime import errors, policy
from outreach.storage import suppressions

LEAD_FIELDS = "l.id, l.first_name, l.last_name, l.phone, l.email, l.telegram_username, l.company, l.timezone, l.status"
USAGE_COLUMN = {"email": "emails", "telegram": "telegram", "voice": "minutes"}
RELEASED = "paused"  # the runner's verdict for "send nothing, record nothing" (its PAUSED)


def month_start(now: datetime.datetime | None = None) -> datetime.date:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.date().replace(day=1)


async def load_campaign(conn: asyncpg.Connection, campaign_id) -> dict:
    """The campaign with what a run needs of its organization: plan, script and voice config."""
    row = await conn.fetchrow(
        """SELECT c.id, c.org_id, c.name, c.status, c.channels, c.channel_priority, c.settings,
                  o.plan, s.content AS script, s.objection_handlers, to_jsonb(v) AS voice
           FROM campaigns c JOIN organizations o ON o.id = c.org_id
           LEFT JOIN scripts s ON s.id = c.script_id AND s.org_id = c.org_id
           LEFT JOIN voice_configs v ON v.org_id = c.org_id
           WHERE c.id = $1""",
        campaign_id,
    )
    if row is None:
        raise errors.NotFound("Campaign not found")
    return dict(row)


async def campaign_status(conn: asyncpg.Connection, campaign_id) -> str | None:
    return await conn.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id)


async def finish_campaign(conn: asyncpg.Connection, campaign_id, status: str) -> bool:
    """Set `completed` or `paused` at the end of a run, never over a user's pause."""
    result = await conn.execute(
        "UPDATE campaigns SET status = $2, next_due_at = NULL, updated_at = now() WHERE id = $1 AND status = 'active'",
        campaign_id, status,
    )
    return result != "UPDATE 0"


async def reconcile(conn: asyncpg.Connection, campaign_id) -> int:
    """After a crash: attempts without an outcome become `unknown` (except email, retried with its key);
    leads left in progress go back to pending. Returns how many leads were released."""
    await conn.execute(
        """UPDATE attempts SET outcome = 'unknown', error = 'Outcome unknown after a restart', finished_at = now()
           WHERE campaign_id = $1 AND outcome IS NULL AND channel <> 'email'""",
        campaign_id,
    )
    result = await conn.execute(
        "UPDATE campaign_leads SET state = 'pending', updated_at = now() WHERE campaign_id = $1 AND state = 'in_progress'",
        campaign_id,
    )
    return int(result.split()[-1])


FIRST_CURSOR = (datetime.datetime.min, "00000000-0000-0000-0000-000000000000")  # before every (due_at, lead_id)


async def claim_leads(conn: asyncpg.Connection, campaign_id, after: tuple, size: int,
                      now: datetime.datetime) -> list[dict]:
    """Claim up to `size` pending leads due by `now` (the run's clock), past the cursor `after` = (due_at,
    lead_id), in that order: a range scan of campaign_leads_due. Each with its step, when it was due, whether an
    earlier step reached it, and its current step's attempts."""
    rows = await conn.fetch(
        f"""WITH claimed AS (
                UPDATE campaign_leads SET state = 'in_progress', updated_at = now()
                WHERE campaign_id = $1 AND lead_id = ANY(ARRAY(
                    SELECT lead_id FROM campaign_leads
                    WHERE campaign_id = $1 AND state = 'pending' AND (due_at, lead_id) > ($2::timestamptz, $3::uuid)
                      AND due_at <= $5::timestamptz
                    ORDER BY due_at, lead_id LIMIT $4 FOR UPDATE SKIP LOCKED))
                RETURNING lead_id, step, due_at, reached)
            SELECT {LEAD_FIELDS}, c.step, c.due_at, c.reached,
                   (SELECT coalesce(jsonb_object_agg(a.channel, jsonb_build_object('outcome', a.outcome, 'error', a.error)),
                                    '{{}}'::jsonb)
                    FROM attempts a WHERE a.campaign_id = $1 AND a.lead_id = l.id AND a.step = c.step) AS attempts
            FROM claimed c JOIN leads l ON l.id = c.lead_id ORDER BY c.due_at, l.id""",
        campaign_id, after[0], after[1], size, now,
    )
    excluded = await suppressions.ineligible(conn, campaign_id, [row["id"] for row in rows])
    return [{**dict(row), "excluded": excluded.get(row["id"])} for row in rows]  # the runner skips those


async def start_attempts(conn: asyncpg.Connection, campaign_id, org_id, plan: str, jobs: list[tuple],
                         plan_limits: dict | None = None) -> dict:
    """Write attempt rows for (lead_id, channel, key, step) before sending, reserving plan usage with them.

    Call inside a transaction. Returns {(lead_id, channel): verdict} where verdict is "go", "done"
    (this channel was already attempted for the lead) or a limit message (nothing written).
    An email attempt left without an outcome by a crash is handed out again: its key makes the
    provider drop a second send.
    A lead suppressed since it was claimed, whose steps a reply stopped, or whose status left the campaign's
    audience gets no attempt: it is ended here (`skipped`, `sent` if an earlier step reached it) with the reason
    and handed back as RELEASED (nothing to send, nothing to record).
    """
    held = await hold_ended(conn, org_id, campaign_id, [job[0] for job in jobs])
    released = {(job[0], job[1]): RELEASED for job in jobs if job[0] in held}
    jobs = [job for job in jobs if job[0] not in held]
    rows = await conn.fetch(
        """INSERT INTO attempts (campaign_id, lead_id, org_id, channel, idempotency_key, step)
           SELECT $1, u.lead_id, $2, u.channel::message_channel, u.key, u.step
           FROM unnest($3::uuid[], $4::text[], $5::text[], $6::int[]) AS u(lead_id, channel, key, step)
           -- a lead deleted meanwhile is not attempted; probed by its key per row (LATERAL ... LIMIT 1), never a
           -- scan of the organization's leads
           CROSS JOIN LATERAL (SELECT 1 FROM leads l WHERE l.id = u.lead_id LIMIT 1) l
           ON CONFLICT ON CONSTRAINT attempts_once DO UPDATE SET started_at = now()
               WHERE attempts.outcome IS NULL AND attempts.channel = 'email'
           RETURNING lead_id, channel::text, (xmax = 0) AS inserted""",
        campaign_id, org_id, [job[0] for job in jobs], [job[1] for job in jobs], [job[2] for job in jobs],
        [job[3] for job in jobs],
    )
    verdicts = {(job[0], job[1]): "done" for job in jobs}
    fresh: dict[str, list] = {}
    for row in rows:
        verdicts[(row["lead_id"], row["channel"])] = "go"
        if row["inserted"]:
            fresh.setdefault(row["channel"], []).append(row["lead_id"])
    if fresh:  # the plan as it is now: an upgrade or a downgrade applies from the next batch of a long run
        plan = await conn.fetchval("SELECT plan::text FROM organizations WHERE id = $1", org_id) or plan
    for channel, lead_ids in fresh.items():
        refused, message = await reserve_usage(conn, org_id, plan, channel, lead_ids, plan_limits)
        if refused:
            steps = {job[0]: job[3] for job in jobs}
            await conn.execute(
                """DELETE FROM attempts a USING unnest($3::uuid[], $4::int[]) AS u(lead_id, step)
                   WHERE a.campaign_id = $1 AND a.channel = $2::message_channel AND a.lead_id = u.lead_id
                     AND a.step = u.step""",
                campaign_id, channel, refused, [steps[lead_id] for lead_id in refused],
            )
            verdicts.update({(lead_id, channel): message for lead_id in refused})
    return {**verdicts, **released}


async def hold_ended(conn: asyncpg.Connection, org_id, campaign_id, lead_ids: list) -> set:
    """At send time, inside the transaction that writes the attempts: the claimed leads suppressed meanwhile, whose
    steps were stopped (storage.timers.stop_lead) or whose status the campaign may no longer contact, ended with
    why. The row locks order this with a reply's stop: one that commits later finds the attempt and ends the lead
    when it is recorded. They come before the list's shared lock, in the order a reply takes them (its rows, then
    the list), so the two never deadlock; the list is read after both, so a suppression is seen or waited for."""
    if not lead_ids:
        return set()
    lead_ids = list(set(lead_ids))
    rows = await conn.fetch(
        """SELECT lead_id, stopped FROM campaign_leads WHERE campaign_id = $1 AND lead_id = ANY($2::uuid[])
           ORDER BY lead_id FOR UPDATE""", campaign_id, lead_ids)
    await suppressions.lock_list(conn, org_id, shared=True)
    reasons = {**{row["lead_id"]: row["stopped"] for row in rows if row["stopped"]},  # the list's reason first
               **await suppressions.ineligible(conn, campaign_id, lead_ids)}
    if reasons:
        await conn.execute(
            f"""UPDATE campaign_leads cl SET state = {suppressions.ENDED}, error = u.reason, updated_at = now()
                FROM unnest($2::uuid[], $3::text[]) AS u(lead_id, reason)
                WHERE cl.campaign_id = $1 AND cl.lead_id = u.lead_id AND cl.state IN ('pending', 'in_progress')""",
            campaign_id, list(reasons), list(reasons.values()))
    return set(reasons)


async def reserve_usage(conn: asyncpg.Connection, org_id, plan: str, channel: str, lead_ids: list,
                        plan_limits: dict | None = None):
    """Count the sends against the month's plan limit (from Settings.plan_limits); return the lead ids over
    the limit and why."""
    limits = policy.limits_for(plan, plan_limits)
    month = month_start()
    await conn.execute("INSERT INTO usage (org_id, month) VALUES ($1, $2) ON CONFLICT DO NOTHING", org_id, month)
    # A call reserves its first minute, so concurrent calls cannot all start on the last free one;
    # the rest of its minutes are added when it ends (record_outcomes).
    column = USAGE_COLUMN[channel]
    limit = {"email": limits.emails, "telegram": limits.telegram, "voice": limits.minutes}[channel]
    row = await conn.fetchrow(
        f"""UPDATE usage u SET {column} = u.{column} + g.granted
            FROM (SELECT least($3::int, greatest($4::int - {column}, 0)) AS granted, {column} AS before
                  FROM usage WHERE org_id = $1 AND month = $2 FOR UPDATE) g
            WHERE u.org_id = $1 AND u.month = $2 RETURNING g.granted, g.before""",
        org_id, month, len(lead_ids), limit,
    )
    granted = row["granted"]
    if granted == len(lead_ids):
        return [], None
    name = {"email": "Email", "telegram": "Telegram message", "voice": "Voice minutes"}[channel]
    return lead_ids[granted:], f"{name} limit reached ({row['before'] + granted}/{limit})"


# Idempotent, because storage.run_store.Reconnecting sends it again when the connection drops, and the first
# one may have committed: only attempts still without an outcome are written, and only those log their message or
# call and give their usage back; only leads still in progress change state.
RECORD = """
WITH batch AS MATERIALIZED (
    -- Each attempt of the batch found through its own unique key (LATERAL ... LIMIT 1 keeps the probe per row,
    -- whatever the statistics say), so a batch reads its own rows, never all the campaign's.
    SELECT u.*, x.id AS attempt_id
    FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $28::int[])
         AS u(lead_id, channel, outcome, provider_id, error, step)
    CROSS JOIN LATERAL (
        SELECT a.id FROM attempts a
        WHERE a.campaign_id = $1 AND a.lead_id = u.lead_id AND a.step = u.step
          AND a.channel = u.channel::message_channel AND a.outcome IS NULL
        LIMIT 1) x
), finished AS (
    UPDATE attempts a SET outcome = b.outcome, provider_id = b.provider_id, error = b.error, finished_at = now()
    FROM batch b WHERE a.id = b.attempt_id AND b.outcome <> 'not_sent' AND a.outcome IS NULL
    RETURNING a.lead_id, a.channel::text AS channel
), withdrawn AS (
    DELETE FROM attempts a USING batch b WHERE a.id = b.attempt_id AND b.outcome = 'not_sent' AND a.outcome IS NULL
    RETURNING a.lead_id
), ended AS (
    -- A lead whose remaining steps were stopped (a reply) while its step was in flight ends instead of waiting.
    UPDATE campaign_leads cl
    SET state = (CASE WHEN u.state <> 'pending' OR cl.stopped IS NULL THEN u.state
                      WHEN cl.reached OR u.reached THEN 'sent' ELSE 'skipped' END)::lead_state,
        error = CASE WHEN u.state = 'pending' AND cl.stopped IS NOT NULL THEN cl.stopped ELSE u.error END,
        channel = u.channel::message_channel, step = u.step, due_at = u.due_at, reached = cl.reached OR u.reached,
        updated_at = now()
    FROM unnest($7::uuid[], $8::text[], $9::text[], $10::text[], $29::int[], $30::timestamptz[], $31::bool[])
         AS u(lead_id, state, channel, error, step, due_at, reached)
    -- The state is compared with an InitPlan's value, not a literal: statistics taken before the run say almost no
    -- row is in progress, and with the literal the planner scans the campaign once per batch row (quadratic).
    WHERE cl.campaign_id = $1 AND cl.lead_id = u.lead_id AND cl.state = (SELECT 'in_progress'::lead_state)
    RETURNING cl.lead_id
), contacted AS (  -- driven by the batch through the primary key, whatever the statistics say of `new` leads
    UPDATE leads l SET status = 'contacted' FROM unnest($11::uuid[]) AS c(id)
    WHERE l.id = c.id AND l.status = 'new' AND l.status_set_by IS NULL
    RETURNING l.id
), logged AS (
    INSERT INTO messages (org_id, lead_id, campaign_id, channel, direction, status, content, metadata, provider_id)
    SELECT $12, u.lead_id, $1, u.channel::message_channel, 'outbound', u.status::message_status, u.content,
           u.metadata, u.provider_id
    FROM unnest($13::uuid[], $14::text[], $15::text[], $16::text[], $17::jsonb[], $18::text[])
         AS u(lead_id, channel, status, content, metadata, provider_id)
    WHERE EXISTS (SELECT 1 FROM leads WHERE id = u.lead_id)  -- a lead deleted meanwhile has no history to keep
      AND EXISTS (SELECT 1 FROM finished f WHERE f.lead_id = u.lead_id AND f.channel = u.channel)
    RETURNING id
), called AS (
    INSERT INTO call_logs (org_id, lead_id, campaign_id, direction, status, to_number, duration, provider_call_id,
                           ended_at)
    SELECT $12, u.lead_id, $1, 'outbound', u.status::call_status, u.to_number, u.duration, u.provider_id, now()
    FROM unnest($19::uuid[], $20::text[], $21::text[], $22::int[], $23::text[])
         AS u(lead_id, status, to_number, duration, provider_id)
    WHERE EXISTS (SELECT 1 FROM leads WHERE id = u.lead_id)
      AND EXISTS (SELECT 1 FROM finished f WHERE f.lead_id = u.lead_id AND f.channel = 'voice')
    ON CONFLICT (provider_call_id) DO NOTHING
    RETURNING id
), usage_change AS (
    UPDATE usage SET emails = greatest(emails - $24, 0), telegram = greatest(telegram - $25, 0),
                     minutes = greatest(minutes + $26, 0)
    WHERE org_id = $12 AND month = $27 AND ($24 > 0 OR $25 > 0 OR $26 <> 0)
      AND (EXISTS (SELECT 1 FROM finished) OR EXISTS (SELECT 1 FROM withdrawn))  -- not again on a retry
    RETURNING org_id
)
SELECT (SELECT count(*) FROM finished) + (SELECT count(*) FROM withdrawn) + (SELECT count(*) FROM ended)
     + (SELECT count(*) FROM contacted) + (SELECT count(*) FROM logged) + (SELECT count(*) FROM called)
     + (SELECT count(*) FROM usage_change)
"""


async def record_outcomes(conn: asyncpg.Connection, campaign_id, org_id, batch) -> None:
    """Write one batch of outcomes (an OutcomeBatch of columns) in one statement."""
    await conn.fetchval(
        RECORD, campaign_id,
        batch.attempt_leads, batch.attempt_channels, batch.attempt_outcomes, batch.attempt_provider_ids,
        batch.attempt_errors,
        batch.lead_ids, batch.lead_states, batch.lead_channels, batch.lead_errors,
        batch.contacted, org_id,
        batch.message_leads, batch.message_channels, batch.message_statuses, batch.message_contents,
        batch.message_metadata, batch.message_provider_ids,
        batch.call_leads, batch.call_statuses, batch.call_numbers, batch.call_durations, batch.call_provider_ids,
        batch.refund_emails, batch.refund_telegram, batch.minutes, month_start(),
        batch.attempt_steps, batch.lead_steps, batch.lead_due, batch.lead_reached,
    )


async def release_leads(conn: asyncpg.Connection, campaign_id, lead_ids: list) -> None:
    """Leads claimed but not started (a pause arrived) go back to pending."""
    await conn.execute(
        """UPDATE campaign_leads SET state = 'pending', updated_at = now()
           WHERE campaign_id = $1 AND lead_id = ANY($2::uuid[]) AND state = 'in_progress'""",
        campaign_id, lead_ids,
    )


async def sent_before(conn: asyncpg.Connection, campaign_id, lead_id) -> list[dict]:
    """What this campaign already sent the lead (earlier steps), oldest first: for the drafter."""
    rows = await conn.fetch(
        """SELECT channel::text, content FROM messages
           WHERE lead_id = $2 AND campaign_id = $1 AND direction = 'outbound' AND status <> 'failed'
           ORDER BY created_at LIMIT 20""",
        campaign_id, lead_id,
    )
    return [dict(row) for row in rows]


async def run_counts(conn: asyncpg.Connection, campaign_id) -> dict:
    row = await conn.fetchrow(
        """SELECT count(*)::int AS total,
                  count(*) FILTER (WHERE state = 'pending')::int AS pending,
                  count(*) FILTER (WHERE state = 'in_progress')::int AS in_progress,
                  count(*) FILTER (WHERE state = 'sent')::int AS succeeded,
                  count(*) FILTER (WHERE state = 'failed')::int AS failed,
                  count(*) FILTER (WHERE state = 'skipped')::int AS skipped,
                  count(*) FILTER (WHERE state = 'unknown')::int AS unknown
           FROM campaign_leads WHERE campaign_id = $1""",
        campaign_id,
    )
    counts = dict(row)
    counts["processed"] = counts["succeeded"] + counts["failed"] + counts["skipped"] + counts["unknown"]
    return counts


async def run_results(conn: asyncpg.Connection, campaign_id, limit: int = 1000) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT cl.lead_id, cl.state::text, cl.channel::text, cl.error, {LEAD_FIELDS}
            FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id
            WHERE cl.campaign_id = $1 AND cl.state NOT IN ('pending', 'in_progress')
            ORDER BY cl.updated_at DESC LIMIT $2""",
        campaign_id, limit,
    )
    return [dict(row) for row in rows]


async def active_campaign_ids(conn: asyncpg.Connection) -> list:
    return [row["id"] for row in await conn.fetch("SELECT id FROM campaigns WHERE status = 'active'")]


async def count_assigned(conn: asyncpg.Connection, campaign_id) -> int:
    return await conn.fetchval("SELECT count(*) FROM campaign_leads WHERE campaign_id = $1", campaign_id)
