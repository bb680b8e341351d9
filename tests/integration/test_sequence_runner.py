"""Sequences in the CampaignRunner over real PostgreSQL and Redis (no Ray), on a clock the test moves:
steps and their delays, a reply that stops the remaining steps (storage.timers.stop_lead, also while the
lead's step is in flight), per-step stats, and leads added to a running sequence."""
from __future__ import annotations

import datetime

from outreach.storage import db, timers
from tests.integration.test_runner import WEEKDAY_NOON, FixedClock, campaign_with_leads, make_runner

DAY = datetime.timedelta(days=1)
THREE_EMAILS = {"sequence": [
    {"channel": "email"},
    {"channel": "email", "delay": {"days": 1}, "templates": {"email": {"subject": "Re", "body": "Again {{firstName}}"}}},
    {"channel": "email", "delay": {"days": 2}, "templates": {"email": {"subject": "Last", "body": "Bye"}},
     "stopOnReply": False},
]}
SENT = {"email": {"sent": 1.0}}


async def steps_sent(pool, lead_id) -> list[int]:
    rows = await pool.fetch("SELECT step FROM attempts WHERE lead_id = $1 AND outcome = 'sent' ORDER BY step", lead_id)
    return [row["step"] for row in rows]


async def test_each_step_waits_its_delay_and_a_reply_stops_the_rest(api, pool, redis):
    campaign_id, ids = await campaign_with_leads(api, pool, 3, settings=THREE_EMAILS)
    clock = FixedClock(WEEKDAY_NOON)
    first = await make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock).run()
    assert first["status"] == "active" and first["scheduled"]["dueAt"] == WEEKDAY_NOON + DAY
    assert first["scheduled"]["leads"] == 3
    async with db.transaction(pool) as conn:
        assert await timers.stop_lead(conn, api.org_id, ids[0], "Replied by email") == 1
    state = await pool.fetchrow("SELECT state::text, error FROM campaign_leads WHERE lead_id = $1", ids[0])
    assert (state["state"], state["error"]) == ("sent", "Replied by email")  # reached by step 1, then stopped

    clock.current = WEEKDAY_NOON + DAY - datetime.timedelta(seconds=1)
    early = await make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock).run()
    assert early["status"] == "active" and await pool.fetchval("SELECT count(*) FROM attempts WHERE step = 1") == 0
    clock.current = WEEKDAY_NOON + DAY
    second = await make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock).run()
    assert second["scheduled"]["dueAt"] == WEEKDAY_NOON + 3 * DAY
    assert [await steps_sent(pool, lead_id) for lead_id in ids] == [[0], [0, 1], [0, 1]]
    key = await pool.fetchval("SELECT idempotency_key FROM attempts WHERE lead_id = $1 AND step = 1", ids[1])
    assert key == f"{campaign_id}:{ids[1]}:1:email"  # the step is in the key: a retry cannot resend another step
    body = await pool.fetchval("SELECT content FROM messages WHERE lead_id = $1 ORDER BY created_at DESC LIMIT 1",
                               ids[1])
    assert body == "Again L1"  # the step's own template

    async with db.transaction(pool) as conn:  # the last step goes out even after a reply (stopOnReply: false)
        assert await timers.stop_lead(conn, api.org_id, ids[1], "Replied") == 0
    clock.current = WEEKDAY_NOON + 3 * DAY
    last = await make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock).run()
    assert last["status"] == "completed"
    assert [await steps_sent(pool, lead_id) for lead_id in ids] == [[0], [0, 1, 2], [0, 1, 2]]
    stats = await timers.step_stats(pool, campaign_id, 3)  # a pool, like a connection, has fetch
    assert [(step["sent"], step["failed"], step["waiting"]) for step in stats] == [(3, 0, 0), (2, 0, 0), (2, 0, 0)]


class ReplyingDispatcher:
    """Sends like the sandbox, but the lead answers while its send is in flight."""

    def __init__(self, inner, pool, org_id, lead_id):
        self.inner, self.pool, self.org_id, self.lead_id = inner, pool, org_id, lead_id

    async def dispatch(self, job):
        if str(job.lead["id"]) == str(self.lead_id):
            async with db.transaction(self.pool) as conn:
                self.stopped = await timers.stop_lead(conn, self.org_id, self.lead_id, "Replied on Telegram")
        return await self.inner.dispatch(job)


async def test_a_reply_during_the_leads_send_ends_it_when_the_step_is_recorded(api, pool, redis):
    campaign_id, ids = await campaign_with_leads(api, pool, 2, settings=THREE_EMAILS)
    runner = make_runner(pool, redis, campaign_id, mixes=SENT, clock=FixedClock(WEEKDAY_NOON))
    replying = ReplyingDispatcher(runner.dispatchers["email"], pool, api.org_id, ids[0])
    runner.dispatchers["email"] = replying
    await runner.run()
    assert replying.stopped == 1
    rows = {str(row["lead_id"]): row for row in await pool.fetch(
        "SELECT lead_id, state::text, step, error FROM campaign_leads WHERE campaign_id = $1", campaign_id)}
    assert (rows[ids[0]]["state"], rows[ids[0]]["error"]) == ("sent", "Replied on Telegram")
    assert (rows[ids[1]]["state"], rows[ids[1]]["step"]) == ("pending", 1)  # the other lead goes on


async def test_a_step_that_cannot_reach_the_lead_moves_on_to_the_next(api, pool, redis):
    sequence = {"sequence": [{"channel": "telegram"}, {"channel": "email", "delay": {"hours": 2}}]}
    campaign_id, ids = await campaign_with_leads(api, pool, 1, channels=("email", "telegram"), settings=sequence)
    clock = FixedClock(WEEKDAY_NOON)
    first = await make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock).run()  # no Telegram username
    assert first["status"] == "active"
    clock.current += datetime.timedelta(hours=2)
    assert (await make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock).run())["status"] == "completed"
    assert await steps_sent(pool, ids[0]) == [1]
    assert await pool.fetchval("SELECT state::text FROM campaign_leads WHERE lead_id = $1", ids[0]) == "sent"


async def test_leads_added_to_a_running_sequence_begin_after_its_first_delay(api, pool, redis):
    delayed = {"sequence": [{"channel": "email", "delay": {"hours": 1}}]}
    campaign_id, _ = await campaign_with_leads(api, pool, 1, settings=delayed)
    assert await pool.fetchval("SELECT next_due_at FROM campaigns WHERE id = $1", campaign_id) is not None
    late = (await api.post("/api/dashboard/leads", json={"firstName": "Late", "email": "late@example.com"})).body
    before = await pool.fetchval("SELECT now()")
    assert (await api.post(f"/api/dashboard/campaigns/{campaign_id}/leads", json={"leadIds": [late["id"]]})).status \
        == 200
    due = await pool.fetchval("SELECT due_at FROM campaign_leads WHERE lead_id = $1", late["id"])
    assert before + datetime.timedelta(minutes=59) < due < before + datetime.timedelta(minutes=61)
