"""Campaigns that live over time, on a real local Ray over real PostgreSQL and Redis, driven by a shared test
clock: sequences over time zones, scheduledAt, a restarted API process, two API processes, pause, and a window
that closes mid-run. No test waits for real time to pass: it moves the clock and lets the scheduler run until
no campaign is due."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach import service
from outreach.actors import remote
from outreach.actors.scheduler import Scheduler
from outreach.http import keys
from outreach.http.app import Deps, build_app
from outreach.runtime import windows
from outreach.storage import db, events
from outreach.storage.clock import SharedTestClock
from outreach.storage.timers import PgTimerStore
from tests.conftest import TEST_RUNNER_OPTIONS, tenant_on
from tests.integration.test_execution import wait_until
from tests.integration.test_runner import TEMPLATES

BASE = "/api/dashboard/campaigns"
UTC = datetime.timezone.utc
MONDAY_NOON = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
WEEKDAYS_9_TO_17 = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}


@pytest.fixture
def clock_settings(ray_settings):
    return dataclasses.replace(ray_settings, shared_test_clock=True)


@pytest.fixture
async def clock(redis):
    test_clock = SharedTestClock(redis)
    await test_clock.set(MONDAY_NOON)
    return test_clock


@pytest.fixture
async def process(ray_cluster, clock_settings, settings, pool, redis, clock):
    """An API process: its app (on the shared test clock), its campaign runtime and its scheduler."""
    runtime = remote.RayRuntime(clock_settings, TEST_RUNNER_OPTIONS)
    app_settings = dataclasses.replace(settings, shared_test_clock=True)
    client = TestClient(TestServer(build_app(app_settings, Deps(pool=pool, redis=redis, runtime=runtime)),
                                   host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def api(process, pool):
    return await tenant_on(process, pool, "sequences", plan="enterprise")


def scheduler_of(pool, client: TestClient, clock) -> Scheduler:
    return Scheduler(PgTimerStore(pool), client.app[keys.RUNTIME].submit, clock)


ALWAYS_SENT = {name: {"sent": 1} for name in ("telegram", "email", "voice")}


async def make_campaign(api, pool, leads: list[dict], *, channels=("email",), latency_ms=0, **fields) -> str:
    """A campaign (sandbox sends that always reach the lead, after `latency_ms`) with these leads assigned."""
    settings = {**TEMPLATES, "sandbox": {"outcomes": ALWAYS_SENT, "latencyMs": latency_ms},
                **fields.pop("settings", {})}
    body = {"name": "seq", "channels": list(channels), "channelPriority": list(channels), "settings": settings,
            **fields}
    reply = await api.post(BASE, json=body)
    assert reply.status == 201, reply.body
    ids = []
    for lead in leads:
        created = await api.post("/api/dashboard/leads", json=lead)
        assert created.status == 201, created.body
        ids.append(created.body["id"])
    assert (await api.post(f"{BASE}/{reply.body['id']}/leads", json={"leadIds": ids})).status == 200
    return reply.body["id"]


class Timeline:
    """Moves the clock from one wake-up to the next, letting the scheduler run each time, and notes at which
    clock time each (lead, step) fired (its attempt finished: the sandbox's calls may go unanswered)."""

    def __init__(self, pool, clock, scheduler: Scheduler):
        self.pool, self.clock, self.scheduler = pool, clock, scheduler
        self.fired: dict[tuple[str, int], datetime.datetime] = {}

    async def note(self) -> None:
        now = await self.clock.now()
        for row in await self.pool.fetch("SELECT lead_id::text, step FROM attempts WHERE outcome IS NOT NULL"):
            self.fired.setdefault((row["lead_id"], row["step"]), now)

    async def run_until(self, until: datetime.datetime) -> None:
        await self.scheduler.run(until_empty=True)
        await self.note()
        while (next_due := await self.pool.fetchval(
                "SELECT min(next_due_at) FROM campaigns WHERE status = 'active'")) and next_due <= until:
            await self.clock.set(next_due)
            await self.scheduler.run(until_empty=True)
            await self.note()
        await self.clock.set(until)
        await self.scheduler.run(until_empty=True)
        await self.note()


async def sends_per_step(pool, campaign_id) -> dict:
    rows = await pool.fetch("SELECT lead_id::text, step, count(*) AS n FROM attempts WHERE campaign_id = $1 "
                            "AND outcome = 'sent' GROUP BY 1, 2", campaign_id)
    return {(row["lead_id"], row["step"]): row["n"] for row in rows}


async def test_a_three_step_sequence_fires_each_step_once_at_the_first_moment_inside_each_leads_window(
        api, pool, clock, process):
    await pool.execute("INSERT INTO telegram_accounts (phone, session, status, assigned_org_id, max_daily_messages) "
                       "VALUES ('+380500000001', 'sandbox', 'active', $1, 100)", api.org_id)
    await pool.execute("INSERT INTO phone_numbers (org_id, number) VALUES ($1, '+14155550199')", api.org_id)
    zones = ["America/New_York", "Europe/Kyiv", "Asia/Tokyo"]
    leads = [{"firstName": zone.split("/")[1], "email": f"{index}@example.com", "telegramUsername": f"lead_{index}",
              "phone": f"+1415555010{index}", "timezone": zone} for index, zone in enumerate(zones)]
    sequence = [{"channel": "telegram"}, {"channel": "email", "delay": {"days": 2}},
                {"channel": "voice", "delay": {"days": 5, "hours": 8}}]
    settings = {"sendingWindow": WEEKDAYS_9_TO_17, "sequence": sequence}
    campaign_id = await make_campaign(api, pool, leads, channels=("telegram", "email", "voice"), settings=settings)
    first = await api.post(f"{BASE}/{campaign_id}/execute")
    assert first.status == 200 and first.body["progress"]["status"] == "active", first.body
    timeline = Timeline(pool, clock, scheduler_of(pool, process, clock))
    await timeline.run_until(MONDAY_NOON + datetime.timedelta(days=14))

    campaign_settings = (await api.get(f"{BASE}/{campaign_id}")).body["settings"]
    ids = {row["timezone"]: str(row["id"]) for row in await pool.fetch("SELECT id, timezone FROM leads")}
    for zone in zones:
        expected, ready = [], MONDAY_NOON
        for index, step in enumerate(sequence):
            delay = datetime.timedelta(**step.get("delay", {}))
            ready = windows.next_send_time(ready + delay, zone, campaign_settings, step["channel"])
            expected.append(ready)
        assert [timeline.fired.get((ids[zone], index)) for index in range(3)] == expected, zone
    attempts = await pool.fetch("SELECT lead_id, step, count(*) AS n FROM attempts WHERE campaign_id = $1 "
                                "GROUP BY 1, 2", campaign_id)
    assert len(attempts) == 9 and {row["n"] for row in attempts} == {1}  # each step of each lead once
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE campaign_id = $1", campaign_id) == 6
    assert await pool.fetchval("SELECT count(*) FROM call_logs WHERE campaign_id = $1", campaign_id) == 3
    body = (await api.get(f"{BASE}/{campaign_id}")).body
    assert body["status"] == "completed"
    assert [(step["sent"] + step["failed"], step["waiting"]) for step in body["steps"]] == [(3, 0)] * 3
    assert body["steps"][1]["sent"] == 3  # email reaches everyone in the sandbox; telegram and calls may not


async def test_a_campaign_scheduled_ahead_sends_nothing_before_and_everything_after_without_a_start(
        api, pool, redis, clock, process):
    begins = MONDAY_NOON + datetime.timedelta(days=1)
    campaign_id = await make_campaign(api, pool, [{"firstName": f"S{i}", "email": f"s{i}@example.com"}
                                                  for i in range(12)], scheduledAt=begins.isoformat())
    waiting = await api.post(f"{BASE}/{campaign_id}/execute")
    assert waiting.status == 400
    assert waiting.body["error"].startswith("Campaign is scheduled to begin at 2026-01-06T12:00:00+00:00")
    started = await api.post(f"{BASE}/{campaign_id}/start")
    assert started.status == 200 and started.body["status"] == "active"
    detail = (await api.get(f"{BASE}/{campaign_id}")).body
    assert detail["status"] == "active" and detail["nextDueAt"] == "2026-01-06T12:00:00.000Z"
    feed = [orjson.loads(fields[b"data"]) for _, fields in await redis.xrange(events.stream_key(campaign_id))]
    assert {"type": "scheduled", "dueAt": "2026-01-06T12:00:00+00:00"}.items() <= feed[-1].items()
    assert feed[-1]["leads"] == 12

    timeline = Timeline(pool, clock, scheduler_of(pool, process, clock))
    await timeline.run_until(begins - datetime.timedelta(seconds=1))
    assert await pool.fetchval("SELECT count(*) FROM attempts") == 0
    await timeline.run_until(begins)
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome IS NOT NULL") == 12
    assert set(timeline.fired.values()) == {begins}
    assert (await api.get(f"{BASE}/{campaign_id}")).body["status"] == "completed"


TWO_EMAILS = {"sequence": [{"channel": "email"}, {"channel": "email", "delay": {"days": 1},
                                                  "templates": {"email": {"subject": "Following up",
                                                                          "body": "Hi again {{firstName}}"}}}]}


async def test_a_new_api_process_fires_every_due_step_once_after_the_old_one_died(
        api, pool, redis, clock, process, ray_cluster, clock_settings):
    campaign_id = await make_campaign(api, pool, [{"firstName": f"K{i}", "email": f"k{i}@example.com"}
                                                  for i in range(200)],
                                      settings=TWO_EMAILS, latency_ms=150)
    assert (await api.post(f"{BASE}/{campaign_id}/execute")).body["progress"]["status"] == "active"
    await clock.set(MONDAY_NOON + datetime.timedelta(days=1))
    old = asyncio.create_task(scheduler_of(pool, process, clock).run())

    async def some_followups_sent():
        return await pool.fetchval("SELECT count(*) FROM attempts WHERE step = 1 AND outcome IS NOT NULL") >= 20

    await wait_until(some_followups_sent)
    old.cancel()  # the old process is gone, and its local Ray with it: the actor dies without a restart
    ray_cluster.kill(ray_cluster.get_actor(f"campaign:{campaign_id}", namespace="outreach"), no_restart=True)
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE step = 1") < 200
    await wait_until(lambda: asyncio.to_thread(lambda: remote.existing_campaign_actor(campaign_id) is None))

    runtime = remote.RayRuntime(clock_settings, TEST_RUNNER_OPTIONS)
    await asyncio.gather(*await service.resume_campaigns(Deps(pool=pool, redis=redis, runtime=runtime)))
    await Scheduler(PgTimerStore(pool), runtime.submit, clock).run(until_empty=True)
    assert await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"
    sends = await sends_per_step(pool, campaign_id)
    assert len(sends) == 400 and set(sends.values()) == {1}
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) == 400
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'sent'",
                               campaign_id) == 400


async def test_two_api_processes_at_once_fire_no_step_twice(api, pool, clock, process, clock_settings,
                                                            database_url):
    campaign_ids = [await make_campaign(api, pool, [{"firstName": f"P{c}{i}", "email": f"p{c}-{i}@example.com"}
                                                    for i in range(30)], settings=TWO_EMAILS) for c in range(3)]
    for campaign_id in campaign_ids:
        assert (await api.post(f"{BASE}/{campaign_id}/execute")).status == 200
    await clock.set(MONDAY_NOON + datetime.timedelta(days=1))
    other_runtime = remote.RayRuntime(clock_settings, TEST_RUNNER_OPTIONS)
    async with db.pool_ctx(database_url, min_size=1, max_size=4) as other_pool:  # the other process's own pool
        first = scheduler_of(pool, process, clock)
        second = Scheduler(PgTimerStore(other_pool), other_runtime.submit, clock)
        await asyncio.gather(first.run(until_empty=True), second.run(until_empty=True))
    assert first.woken + second.woken >= 3
    for campaign_id in campaign_ids:
        sends = await sends_per_step(pool, campaign_id)
        assert len(sends) == 60 and set(sends.values()) == {1}
        assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) == 60
        assert await pool.fetchval("SELECT count(*) FROM messages WHERE campaign_id = $1", campaign_id) == 60
        assert await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"


async def test_pausing_a_sequence_stops_its_timers_and_start_resumes_at_the_right_steps(api, pool, clock, process):
    three = {"sequence": [*TWO_EMAILS["sequence"], {"channel": "email", "delay": {"days": 3},
                                                     "templates": {"email": {"subject": "Last", "body": "Bye"}}}]}
    campaign_id = await make_campaign(api, pool, [{"firstName": f"Z{i}", "email": f"z{i}@example.com"}
                                                  for i in range(10)], settings=three)
    assert (await api.post(f"{BASE}/{campaign_id}/execute")).status == 200
    assert (await api.post(f"{BASE}/{campaign_id}/pause")).status == 200
    timeline = Timeline(pool, clock, scheduler_of(pool, process, clock))
    await timeline.run_until(MONDAY_NOON + datetime.timedelta(days=2))  # step 2 was due a day ago
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE step > 0") == 0
    resumed_at = await clock.now()
    assert (await api.post(f"{BASE}/{campaign_id}/start")).status == 200

    async def followups_sent():  # and each lead's last step timed from its follow-up
        return await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE step = 2 AND state = 'pending'") == 10

    await wait_until(followups_sent)
    await timeline.note()
    await timeline.run_until(resumed_at + datetime.timedelta(days=3) - datetime.timedelta(seconds=1))
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE step = 2") == 0  # 3 days after step 2
    await timeline.run_until(resumed_at + datetime.timedelta(days=3))
    assert {when for (_, step), when in timeline.fired.items() if step == 2} == {
        resumed_at + datetime.timedelta(days=3)}
    assert set((await sends_per_step(pool, campaign_id)).values()) == {1}
    assert (await api.get(f"{BASE}/{campaign_id}")).body["status"] == "completed"


async def test_leads_not_reached_before_a_window_closes_go_out_when_it_reopens_by_themselves(
        api, pool, clock, process):
    closing = MONDAY_NOON.replace(hour=16, minute=59)
    await clock.set(closing)
    campaign_id = await make_campaign(api, pool, [{"firstName": f"W{i}", "email": f"w{i}@example.com"}
                                                  for i in range(300)],
                                      settings={"sendingWindow": WEEKDAYS_9_TO_17}, latency_ms=200)
    assert (await api.post(f"{BASE}/{campaign_id}/execute?wait=false")).status == 202

    async def some_sent():
        return await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome = 'sent'") >= 20

    await wait_until(some_sent)
    await clock.set(closing.replace(hour=17, minute=0))

    async def run_over():
        return await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE state = 'in_progress'") == 0 and \
            await pool.fetchval("SELECT next_due_at FROM campaigns WHERE id = $1", campaign_id) is not None and \
            await pool.fetchval("SELECT next_due_at FROM campaigns WHERE id = $1", campaign_id) > closing.replace(
                hour=17, minute=1)

    await wait_until(run_over)
    sent_today = await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id)
    assert 20 <= sent_today < 300
    tomorrow_9 = MONDAY_NOON.replace(day=6, hour=9, minute=0)
    waiting = await pool.fetch("SELECT due_at, error FROM campaign_leads WHERE state = 'pending'")
    assert len(waiting) == 300 - sent_today
    assert {(row["due_at"], row["error"]) for row in waiting} == {(tomorrow_9, "Outside the lead's sending window")}
    assert (await api.get(f"{BASE}/{campaign_id}")).body["status"] == "active"

    timeline = Timeline(pool, clock, scheduler_of(pool, process, clock))
    await timeline.run_until(tomorrow_9 - datetime.timedelta(minutes=1))
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) == sent_today
    await timeline.run_until(tomorrow_9)
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome = 'sent'") == 300
    assert (await api.get(f"{BASE}/{campaign_id}")).body["status"] == "completed"
