"""CampaignRunner as a plain class over real PostgreSQL and Redis, with sandbox providers."""
from __future__ import annotations

import asyncio
import datetime

import orjson

from outreach.actors.campaign_runner import CampaignRunner, RunnerOptions
from outreach.actors.dispatchers import EmailDispatcher, TelegramDispatcher, VoiceDispatcher
from outreach.providers.sandbox import SandboxEmail, SandboxOutcomes, SandboxTelegram, SandboxVoice
from outreach.storage import events
from outreach.storage.run_store import PgRunStore, RedisEventSink

TEMPLATES = {"templates": {"email": {"subject": "Hi {{firstName}}", "body": "Hello {{firstName}} at {{company}}"},
                           "telegram": "Hey {{firstName}}"}}


async def campaign_with_leads(api, pool, count: int, *, channels=("email",), plan="enterprise", leads=None, **extra):
    await pool.execute("UPDATE organizations SET plan = $2 WHERE id = $1", api.org_id, plan)
    body = {"name": "run", "channels": list(channels), "channelPriority": list(channels),
            "settings": {**TEMPLATES, **extra.pop("settings", {})}, **extra}
    campaign = (await api.post("/api/dashboard/campaigns", json=body)).body
    rows = leads or [{"firstName": f"L{i}", "email": f"l{i}@example.com"} for i in range(count)]
    ids = [(await api.post("/api/dashboard/leads", json=row)).body["id"] for row in rows]
    await api.post(f"/api/dashboard/campaigns/{campaign['id']}/leads", json={"leadIds": ids})
    await api.post(f"/api/dashboard/campaigns/{campaign['id']}/start")
    return campaign["id"], ids


class FixedClock:
    """The runner's clock held still (windows are decided by it, not by when the test happens to run)."""

    def __init__(self, now: datetime.datetime):
        self.current = now

    async def now(self) -> datetime.datetime:
        return self.current


WEEKDAY_NOON = datetime.datetime(2026, 1, 7, 12, 0, tzinfo=datetime.timezone.utc)  # a Wednesday


def make_runner(pool, redis, campaign_id, *, mixes=None, latency=0.0, clock=None, **options):
    mixes = mixes or {}
    outcomes = {name: SandboxOutcomes(name, latency=latency, mix=mixes.get(name)) for name in ("email", "telegram", "voice")}
    dispatchers = {"email": EmailDispatcher(SandboxEmail(outcomes["email"]), "Sales <s@example.com>"),
                   "telegram": TelegramDispatcher(SandboxTelegram(outcomes["telegram"])),
                   "voice": VoiceDispatcher(SandboxVoice(outcomes["voice"]))}
    return CampaignRunner(campaign_id, PgRunStore(pool, campaign_id), RedisEventSink(redis, campaign_id), dispatchers,
                          RunnerOptions(**options), clock=clock or FixedClock(WEEKDAY_NOON))


async def test_run_sends_every_lead_once_and_completes(api, pool, redis):
    campaign_id, lead_ids = await campaign_with_leads(api, pool, 30)
    summary = await make_runner(pool, redis, campaign_id, mixes={"email": {"sent": 1.0}}, batch_size=7).run()
    assert summary["status"] == "completed"
    assert summary["counts"]["succeeded"] == 30 and summary["counts"]["processed"] == 30
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) == 30
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'sent'", campaign_id) == 30
    assert await pool.fetchval("SELECT count(*) FROM leads WHERE status = 'contacted' AND org_id = $1", api.org_id) == 30
    assert await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"
    assert await pool.fetchval("SELECT emails FROM usage WHERE org_id = $1", api.org_id) == 30
    entries = await redis.xrange(events.stream_key(campaign_id))
    kinds = [orjson.loads(fields[b"data"])["type"] for _, fields in entries]
    assert kinds[0] == "status" and kinds[-1] == "done"
    results = [r for _, f in entries for r in orjson.loads(f[b"data"]).get("results", [])]
    assert sorted(r["leadId"] for r in results) == sorted(lead_ids)
    rendered = await pool.fetchval("SELECT content FROM messages WHERE campaign_id = $1 LIMIT 1", campaign_id)
    assert rendered.startswith("Hello L") and "{{" not in rendered


async def test_failed_channel_falls_back_to_the_next(api, pool, redis):
    leads = [{"firstName": "A", "email": "a@example.com", "telegramUsername": "a_tg", "phone": "+14155550100"}]
    campaign_id, _ = await campaign_with_leads(api, pool, 0, channels=("telegram", "email", "voice"), leads=leads,
                                               settings={"callingWindow": {"start": "00:00", "end": "23:59"}})
    mixes = {"telegram": {"privacy_restricted": 1.0}, "email": {"bounced": 1.0}, "voice": {"sent": 1.0}}
    summary = await make_runner(pool, redis, campaign_id, mixes=mixes).run()
    assert summary["results"][0]["channel"] == "voice" and summary["results"][0]["status"] == "sent"
    channels = await pool.fetch("SELECT channel::text, outcome FROM attempts ORDER BY started_at")
    assert [(r["channel"], r["outcome"]) for r in channels] == [
        ("telegram", "privacy_restricted"), ("email", "bounced"), ("voice", "sent")]
    assert await pool.fetchval("SELECT count(*) FROM call_logs WHERE status = 'completed'") == 1
    usage = await pool.fetchrow("SELECT emails, telegram FROM usage WHERE org_id = $1", api.org_id)
    assert (usage["emails"], usage["telegram"]) == (0, 0)  # failed sends are not counted


async def test_no_contact_is_skipped_and_rejected_leads_are_never_contacted(api, pool, redis):
    leads = [{"firstName": "NoEmail", "phone": "+14155550101"}, {"firstName": "Rejected", "email": "r@example.com"}]
    campaign_id, ids = await campaign_with_leads(api, pool, 0, leads=leads)
    await api.patch(f"/api/dashboard/leads/{ids[1]}", json={"status": "rejected"})
    summary = await make_runner(pool, redis, campaign_id).run()
    by_name = {r["leadName"]: r for r in summary["results"]}
    assert by_name["NoEmail"]["status"] == "skipped" and by_name["NoEmail"]["channel"] == "none"
    assert by_name["Rejected"]["status"] == "skipped"
    assert await pool.fetchval("SELECT count(*) FROM attempts") == 0


async def test_plan_limit_stops_that_channel_only(api, pool, redis):
    leads = [{"firstName": f"L{i}", "email": f"l{i}@example.com"} for i in range(8)]
    leads += [{"firstName": f"T{i}", "telegramUsername": f"t{i}"} for i in range(4)]
    campaign_id, _ = await campaign_with_leads(api, pool, 0, channels=("email", "telegram"), leads=leads, plan="starter")
    await pool.execute("INSERT INTO usage (org_id, month, emails) VALUES ($1, date_trunc('month', now() at time zone 'utc'), 495)",
                       api.org_id)
    mixes = {"email": {"sent": 1.0}, "telegram": {"sent": 1.0}}
    summary = await make_runner(pool, redis, campaign_id, mixes=mixes, batch_size=4).run()
    assert summary["counts"]["succeeded"] == 9  # 5 emails up to the limit + 4 telegram
    assert summary["counts"]["pending"] == 3
    assert summary["status"] == "paused" and "Email limit reached (500/500)" in summary["reason"]
    errors = await pool.fetch("SELECT error FROM campaign_leads WHERE state = 'pending'")
    assert {row["error"] for row in errors} == {"Email limit reached (500/500)"}
    assert await pool.fetchval("SELECT emails FROM usage WHERE org_id = $1", api.org_id) == 500


async def test_a_second_run_sends_nothing_new(api, pool, redis):
    campaign_id, _ = await campaign_with_leads(api, pool, 5)
    await make_runner(pool, redis, campaign_id).run()
    await pool.execute("UPDATE campaigns SET status = 'active' WHERE id = $1", campaign_id)
    await pool.execute("UPDATE campaign_leads SET state = 'pending' WHERE campaign_id = $1", campaign_id)
    await make_runner(pool, redis, campaign_id).run()
    assert await pool.fetchval("SELECT count(*) FROM attempts") == 5
    assert await pool.fetchval("SELECT count(*) FROM messages") == 5


async def test_pause_stops_new_attempts(api, pool, redis):
    campaign_id, _ = await campaign_with_leads(api, pool, 60)
    runner = make_runner(pool, redis, campaign_id, latency=0.02, batch_size=10, concurrency={"email": 5})
    task = asyncio.create_task(runner.run())
    async with asyncio.timeout(30):
        while await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome IS NOT NULL") < 10:
            await asyncio.sleep(0.01)
    await pool.execute("UPDATE campaigns SET status = 'paused' WHERE id = $1", campaign_id)
    await runner.pause()
    paused_at = await pool.fetchval("SELECT now()")
    summary = await asyncio.wait_for(task, 30)
    assert summary["status"] == "paused"
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE started_at > $1", paused_at) == 0
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome IS NULL") == 0
    counts = await pool.fetchrow("SELECT count(*) FILTER (WHERE state = 'in_progress') AS busy, "
                                 "count(*) FILTER (WHERE state = 'pending') AS pending FROM campaign_leads")
    assert counts["busy"] == 0 and counts["pending"] > 0


async def test_without_templates_messages_are_drafted_for_each_lead_never_the_script(api, pool, redis):
    from outreach.providers.openrouter import OpenRouterDrafter
    from tests.fakes.openrouter import FakeOpenRouter, completion, error_reply

    fake = await FakeOpenRouter().start()
    try:
        script = (await api.post("/api/dashboard/scripts", json={
            "name": "S", "content": "Internal playbook: never mention the discount before they ask about pricing."})).body
        leads = [{"firstName": "Ann", "email": "ann@example.com", "telegramUsername": "ann_tg"}]
        campaign_id, _ = await campaign_with_leads(api, pool, 0, channels=("email", "telegram"), leads=leads,
                                                   scriptId=script["id"])
        await pool.execute("UPDATE campaigns SET settings = '{}' WHERE id = $1", campaign_id)
        fake.queue(error_reply(500, "model crashed"), completion("Hi Ann! Quick question on Telegram."))
        runner = make_runner(pool, redis, campaign_id, mixes={"telegram": {"sent": 1.0}})
        runner.drafter = OpenRouterDrafter("sk-or-test", fake.url())
        summary = await runner.run()
        await runner.drafter.close()
    finally:
        await fake.stop()
    assert summary["results"] == [{"leadId": summary["results"][0]["leadId"], "leadName": "Ann",
                                   "channel": "telegram", "status": "sent"}]
    assert "Internal playbook" in fake.requests[0]["json"]["messages"][0]["content"]  # instructions to the model
    contents = [row["content"] for row in await pool.fetch("SELECT content FROM messages")]
    assert contents == ["Hi Ann! Quick question on Telegram."]
    assert await pool.fetchval("SELECT count(*) FROM attempts") == 1  # the failed draft sent nothing


async def test_a_drafting_account_error_blocks_the_channel_and_leaves_leads_waiting(api, pool, redis):
    from outreach.providers.openrouter import OpenRouterDrafter
    from tests.fakes.openrouter import FakeOpenRouter, error_reply

    fake = await FakeOpenRouter().start()
    try:
        campaign_id, _ = await campaign_with_leads(api, pool, 3)
        await pool.execute("UPDATE campaigns SET settings = '{}' WHERE id = $1", campaign_id)
        fake.queue(*[error_reply(402, "Insufficient credits")] * 3)
        runner = make_runner(pool, redis, campaign_id)
        runner.drafter = OpenRouterDrafter("sk-or-test", fake.url())
        summary = await runner.run()
        await runner.drafter.close()
    finally:
        await fake.stop()
    assert summary["status"] == "paused" and "AI draft failed" in summary["reason"]
    assert summary["counts"]["pending"] == 3
    assert await pool.fetchval("SELECT count(*) FROM attempts") == 0


async def test_an_unknown_outcome_ends_the_lead_without_trying_other_channels(api, pool, redis):
    leads = [{"firstName": "U", "email": "u@example.com", "telegramUsername": "u_tg"}]
    campaign_id, _ = await campaign_with_leads(api, pool, 0, channels=("telegram", "email"), leads=leads)
    summary = await make_runner(pool, redis, campaign_id, mixes={"telegram": {"unknown": 1.0}}).run()
    assert summary["counts"]["unknown"] == 1 and summary["status"] == "completed"
    assert [row["channel"] for row in await pool.fetch("SELECT channel::text FROM attempts")] == ["telegram"]
    assert await pool.fetchval("SELECT telegram FROM usage WHERE org_id = $1", api.org_id) == 1  # it may have been sent


async def test_a_send_recorded_before_a_crash_ends_its_lead_sent_without_another_channel(api, pool, redis):
    leads = [{"firstName": "C", "email": "c@example.com", "telegramUsername": "c_tg"}]
    campaign_id, (lead_id,) = await campaign_with_leads(api, pool, 0, channels=("email", "telegram"), leads=leads)
    # The crash window: the email's outcome was written, the lead's terminal state was not.
    await pool.execute("INSERT INTO attempts (campaign_id, lead_id, org_id, channel, idempotency_key, outcome) "
                       "VALUES ($1, $2, $3, 'email', 'k', 'sent')", campaign_id, lead_id, api.org_id)
    await pool.execute("UPDATE campaign_leads SET state = 'in_progress' WHERE lead_id = $1", lead_id)
    summary = await make_runner(pool, redis, campaign_id).run()
    assert summary["results"][0]["status"] == "sent" and summary["results"][0]["channel"] == "email"
    assert await pool.fetchval("SELECT count(*) FROM attempts") == 1  # Telegram was never tried


async def test_start_right_after_pause_runs_again_once_the_paused_run_has_drained(api, pool, redis):
    campaign_id, _ = await campaign_with_leads(api, pool, 40)
    runner = make_runner(pool, redis, campaign_id, latency=0.05, batch_size=5, max_in_flight=5,
                         concurrency={"email": 5})
    first = runner.start()
    async with asyncio.timeout(30):
        while await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome IS NOT NULL") < 5:
            await asyncio.sleep(0.01)
    await pool.execute("UPDATE campaigns SET status = 'paused' WHERE id = $1", campaign_id)
    await runner.pause()
    await pool.execute("UPDATE campaigns SET status = 'active' WHERE id = $1", campaign_id)
    summary = await asyncio.wait_for(runner.run(), 60)  # while the paused run may still be draining
    await first
    assert summary["status"] == "completed" and summary["counts"]["processed"] == 40


async def test_a_paused_campaign_sends_no_email_that_was_waiting_for_its_rate_limit_turn(api, pool, redis):
    from outreach.actors.dispatchers import EmailDispatcher
    from outreach.providers.resend import ResendEmail
    from tests.fakes.resend import FakeResend

    fake = await FakeResend().start()
    sender = ResendEmail(fake.api_key, fake.url(), rate_per_second=20)
    try:
        campaign_id, _ = await campaign_with_leads(api, pool, 60)
        runner = make_runner(pool, redis, campaign_id)
        runner.dispatchers["email"] = EmailDispatcher(sender, "Sales <s@example.com>")
        task = runner.start()
        async with asyncio.timeout(30):
            while len(fake.sent) < 5:
                await asyncio.sleep(0.01)
        await pool.execute("UPDATE campaigns SET status = 'paused' WHERE id = $1", campaign_id)
        await runner.pause()
        sent_at_pause = len(fake.sent)
        summary = await asyncio.wait_for(task, 30)
    finally:
        await sender.close()
        await fake.stop()
    assert len(fake.sent) - sent_at_pause <= 1  # at most the one request already on the wire
    assert summary["status"] == "paused"
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome IS NULL") == 0
    pending = await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE state = 'pending'")
    assert pending == 60 - len(fake.sent)


async def test_a_feed_outage_does_not_stop_the_run(api, pool, redis):
    class BrokenFeed:
        async def publish(self, events, counts=None):
            raise ConnectionError("Redis is down")

    campaign_id, _ = await campaign_with_leads(api, pool, 10)
    runner = make_runner(pool, redis, campaign_id)
    runner.events = BrokenFeed()
    summary = await runner.run()
    assert summary["status"] == "completed" and summary["counts"]["processed"] == 10


async def test_concurrent_calls_cannot_all_start_on_the_last_free_minute(api, pool, redis):
    leads = [{"firstName": f"V{i}", "phone": f"+1555000{i}"} for i in range(3)]
    campaign_id, _ = await campaign_with_leads(api, pool, 0, channels=("voice",), leads=leads, plan="starter",
                                               settings={"callingWindow": {"start": "00:00", "end": "23:59"}})
    await pool.execute("INSERT INTO usage (org_id, month, minutes) "
                       "VALUES ($1, date_trunc('month', now() at time zone 'utc'), 499)", api.org_id)
    summary = await make_runner(pool, redis, campaign_id, mixes={"voice": {"sent": 1.0}}).run()
    assert summary["counts"]["succeeded"] == 1 and summary["counts"]["pending"] == 2
    assert "Voice minutes limit reached (500/500)" in summary["reason"]
    duration = await pool.fetchval("SELECT duration FROM call_logs")
    assert await pool.fetchval("SELECT minutes FROM usage WHERE org_id = $1", api.org_id) == \
        499 + -(-duration // 60)  # the reserved first minute and the rest of the call


async def test_a_call_that_does_not_reach_the_lead_gives_its_minute_back(api, pool, redis):
    leads = [{"firstName": "N", "phone": "+15550009"}]
    campaign_id, _ = await campaign_with_leads(api, pool, 0, channels=("voice",), leads=leads, plan="starter",
                                               settings={"callingWindow": {"start": "00:00", "end": "23:59"}})
    await make_runner(pool, redis, campaign_id, mixes={"voice": {"no_answer": 1.0}}).run()
    assert await pool.fetchval("SELECT minutes FROM usage WHERE org_id = $1", api.org_id) == 0
