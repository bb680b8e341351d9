"""Review findings on sequences and the scheduler, over real PostgreSQL and Redis (runs in-process, sandbox
providers; the clock held still and moved by the test): a reply or a status change between a lead's claim and
its attempt stops the step; a lead coming due as a run ends does not pause the campaign; leads added to a
campaign armed for later wait for its scheduledAt, and moving scheduledAt is a pause, the edit and a start;
absurd delays and dates are 400s; the scheduler outlives database failures and listens again."""
from __future__ import annotations

import asyncio
import datetime

from outreach.actors.scheduler import Scheduler
from outreach.storage import db, timers
from outreach.storage.timers import PgTimerStore
from tests.integration.test_execution import wait_until
from tests.integration.test_runner import TEMPLATES, WEEKDAY_NOON, FixedClock, campaign_with_leads, make_runner

BASE = "/api/dashboard/campaigns"
TWO_EMAILS = {"sequence": [{"channel": "email"},
                           {"channel": "email", "delay": {"days": 1},
                            "templates": {"email": {"subject": "Re", "body": "Again {{firstName}}"}}}]}
SENT = {"email": {"sent": 1.0}}


class BeforeStepTwoAttempt:
    """The run's store, with `change` happening to one lead after its step-2 claim, before its attempt is written."""

    def __init__(self, inner, lead_id, change):
        self.inner, self.lead_id, self.change = inner, lead_id, change
        self.changed = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def start_attempts(self, plan, jobs):
        if self.changed is None and any(str(job[0]) == self.lead_id and job[3] == 1 for job in jobs):
            self.changed = await self.change()
        return await self.inner.start_attempts(plan, jobs)


async def run_step_two_with(pool, redis, campaign_id, lead_id, change) -> BeforeStepTwoAttempt:
    clock = FixedClock(WEEKDAY_NOON)
    await make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock).run()
    clock.current = WEEKDAY_NOON + datetime.timedelta(days=1)
    runner = make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock)
    runner.store = BeforeStepTwoAttempt(runner.store, lead_id, change)
    await runner.run()
    return runner.store


async def sent_steps(pool, lead_id) -> list[int]:
    return [row["step"] for row in await pool.fetch(
        "SELECT step FROM attempts WHERE lead_id = $1 AND outcome = 'sent' ORDER BY step", lead_id)]


async def test_a_reply_between_the_claim_and_the_attempt_stops_the_next_step(api, pool, redis):
    campaign_id, ids = await campaign_with_leads(api, pool, 2, settings=TWO_EMAILS)

    async def reply():
        async with db.transaction(pool) as conn:
            return await timers.stop_lead(conn, api.org_id, ids[0], "Replied")

    store = await run_step_two_with(pool, redis, campaign_id, ids[0], reply)
    assert store.changed == 1
    assert await sent_steps(pool, ids[0]) == [0]
    assert await sent_steps(pool, ids[1]) == [0, 1]
    row = await pool.fetchrow("SELECT state::text, error FROM campaign_leads WHERE lead_id = $1", ids[0])
    assert (row["state"], row["error"]) == ("sent", "Replied")  # step 1 reached them: the lead ends sent
    assert await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"


async def test_a_lead_converted_between_the_claim_and_the_attempt_is_not_contacted_again(api, pool, redis):
    campaign_id, ids = await campaign_with_leads(api, pool, 2, settings=TWO_EMAILS)

    async def convert():
        return (await api.patch(f"/api/dashboard/leads/{ids[0]}", json={"status": "converted"})).status

    store = await run_step_two_with(pool, redis, campaign_id, ids[0], convert)
    assert store.changed == 200
    assert await sent_steps(pool, ids[0]) == [0]
    row = await pool.fetchrow("SELECT state::text, error FROM campaign_leads WHERE lead_id = $1", ids[0])
    assert row["state"] == "sent" and "converted" in row["error"], dict(row)


class TimePasses:
    """The run's store as real time sees it: its end (the second run_counts) comes 10 ms after its last claim."""

    def __init__(self, inner, clock):
        self.inner, self.clock, self.calls = inner, clock, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def run_counts(self):
        self.calls += 1
        if self.calls == 2:
            self.clock.current += datetime.timedelta(milliseconds=10)
        return await self.inner.run_counts()


async def test_a_lead_coming_due_as_the_run_ends_is_sent_and_the_campaign_does_not_pause(api, pool, redis):
    campaign_id, ids = await campaign_with_leads(api, pool, 2)
    await pool.execute("UPDATE campaign_leads SET due_at = $2 WHERE lead_id = $1", ids[1],
                       WEEKDAY_NOON + datetime.timedelta(milliseconds=5))
    clock = FixedClock(WEEKDAY_NOON)
    runner = make_runner(pool, redis, campaign_id, mixes=SENT, clock=clock)
    runner.store = TimePasses(runner.store, clock)
    summary = await runner.run()
    row = await pool.fetchrow("SELECT status::text, status_reason FROM campaigns WHERE id = $1", campaign_id)
    assert (row["status"], row["status_reason"], summary["status"]) == ("completed", None, "completed")
    assert await sent_steps(pool, ids[1]) == [0]


async def scheduled_campaign(api, pool, begins_at: datetime.datetime) -> str:
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", api.org_id)
    reply = await api.post(BASE, json={"name": "later", "channels": ["email"], "channelPriority": ["email"],
                                       "scheduledAt": begins_at.isoformat(), "settings": TEMPLATES})
    assert reply.status == 201, reply.body
    return reply.body["id"]


async def add_lead(api, campaign_id, name: str) -> str:
    lead = (await api.post("/api/dashboard/leads", json={"firstName": name, "email": f"{name}@example.com"})).body
    assert (await api.post(f"{BASE}/{campaign_id}/leads", json={"leadIds": [lead["id"]]})).status == 200
    return lead["id"]


async def due_times(pool, campaign_id) -> set:
    return {row["due_at"] for row in await pool.fetch(
        "SELECT due_at FROM campaign_leads WHERE campaign_id = $1", campaign_id)}


async def test_leads_added_to_a_campaign_armed_for_later_wait_for_its_scheduled_at(api, pool, redis):
    later = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=2)
    campaign_id = await scheduled_campaign(api, pool, later)
    await add_lead(api, campaign_id, "first")
    assert (await api.post(f"{BASE}/{campaign_id}/start")).status == 200
    await add_lead(api, campaign_id, "added")
    assert await due_times(pool, campaign_id) == {later}
    await make_runner(pool, redis, campaign_id, mixes=SENT,
                      clock=FixedClock(datetime.datetime.now(datetime.timezone.utc))).run()
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) == 0
    await make_runner(pool, redis, campaign_id, mixes=SENT, clock=FixedClock(later)).run()
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1 AND outcome = 'sent'",
                               campaign_id) == 2


async def test_moving_scheduled_at_of_an_armed_campaign_is_a_409_until_paused_then_start_moves_its_timers(api, pool):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    later, sooner = now + datetime.timedelta(days=2), now + datetime.timedelta(hours=3)
    campaign_id = await scheduled_campaign(api, pool, later)
    await add_lead(api, campaign_id, "lead")
    assert (await api.post(f"{BASE}/{campaign_id}/start")).status == 200
    refused = await api.patch(f"{BASE}/{campaign_id}", json={"scheduledAt": sooner.isoformat()})
    assert refused.status == 409 and "pause it" in refused.body["error"], refused.body
    assert (await api.patch(f"{BASE}/{campaign_id}", json={"name": "renamed"})).status == 200  # other edits go
    assert (await api.post(f"{BASE}/{campaign_id}/pause")).status == 200
    assert (await api.patch(f"{BASE}/{campaign_id}", json={"scheduledAt": sooner.isoformat()})).status == 200
    assert (await api.post(f"{BASE}/{campaign_id}/start")).status == 200
    assert await due_times(pool, campaign_id) == {sooner}
    assert await pool.fetchval("SELECT next_due_at FROM campaigns WHERE id = $1", campaign_id) == sooner


async def test_absurd_delays_and_dates_are_400s_never_500s(api, pool):
    huge = await api.post(BASE, json={"name": "x", "channels": ["email"],
                                      "settings": {"sequence": [{"channel": "email", "delay": {"days": 1e308}}]}})
    assert huge.status == 400 and "at most 366 days" in huge.body["error"], huge.body
    minutes = await api.post(BASE, json={"name": "x", "channels": ["email"],
                                         "settings": {"sequence": [{"delay": {"minutes": 10 ** 12}}]}})
    assert minutes.status == 400 and "at most 366 days" in minutes.body["error"], minutes.body
    far = await api.post(BASE, json={"name": "x", "channels": ["email"], "scheduledAt": "9999-12-31T23:59:59Z"})
    assert far.status == 400 and far.body["error"] == "scheduledAt must be at most 5 years ahead", far.body
    campaign_id = await scheduled_campaign(api, pool, datetime.datetime.now(datetime.timezone.utc))
    patched = await api.patch(f"{BASE}/{campaign_id}", json={"scheduledAt": "9999-12-31T23:59:59Z"})
    assert patched.status == 400, patched.body
    # a date stored before the cap existed: start refuses it clearly instead of overflowing
    await pool.execute("UPDATE campaigns SET scheduled_at = '9999-12-31T23:59:59Z', settings = $2 WHERE id = $1",
                       campaign_id, {**TEMPLATES, "sequence": [{"channel": "email", "delay": {"days": 2}}]})
    await add_lead(api, campaign_id, "lead")
    started = await api.post(f"{BASE}/{campaign_id}/start")
    assert started.status == 400 and "9999" in started.body["error"], started.body
    assert await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "draft"


class FailingTimerStore:
    """PgTimerStore with the database failing: `next_wake` raises `failures` times (right after a claim)."""

    def __init__(self, inner: PgTimerStore, failures: int):
        self.inner, self.failures, self.listens = inner, failures, 0

    async def claim_due(self, now, limit):
        return await self.inner.claim_due(now, limit)

    async def next_wake(self):
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("the database went away")
        return await self.inner.next_wake()

    def listening(self, callback):
        self.listens += 1
        return self.inner.listening(callback)


def done_run() -> asyncio.Future:
    """What the runtime's submit hands back (the run), already finished: these tests watch only the wake-ups."""
    run = asyncio.get_running_loop().create_future()
    run.set_result({})
    return run


async def due_campaign(api, pool, when: datetime.datetime) -> str:
    reply = await api.post(BASE, json={"name": "due", "channels": ["email"]})
    await pool.execute("UPDATE campaigns SET status = 'active', next_due_at = $2 WHERE id = $1", reply.body["id"], when)
    return reply.body["id"]


async def wake_via_notify(pool, campaign_id, when: datetime.datetime) -> None:
    async with db.transaction(pool) as conn:
        await conn.execute("UPDATE campaigns SET next_due_at = $2 WHERE id = $1", campaign_id, when)
        await timers.notify_due(conn, when)


async def running(scheduler: Scheduler, body):
    task = asyncio.create_task(scheduler.run())
    try:
        await body()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


async def test_the_scheduler_outlives_a_failure_right_after_a_claim_and_wakes_the_campaign_afterwards(api, pool):
    campaign_id = await due_campaign(api, pool, WEEKDAY_NOON)
    woken: list = []

    async def submit(woken_id):
        woken.append(str(woken_id))
        return done_run()

    store = FailingTimerStore(PgTimerStore(pool), failures=3)
    scheduler = Scheduler(store, submit, FixedClock(WEEKDAY_NOON), max_backoff=0.05)

    async def body():
        await wait_until(lambda: asyncio.sleep(0, len(woken) == 1))
        await wait_until(lambda: asyncio.sleep(0, store.failures == 0 and store.listens == 4))
        await wake_via_notify(pool, campaign_id, WEEKDAY_NOON)  # a start tells the schedulers through NOTIFY
        await wait_until(lambda: asyncio.sleep(0, len(woken) == 2))

    await running(scheduler, body)
    assert woken == [campaign_id, campaign_id] and scheduler.failures == 0


async def test_the_scheduler_listens_again_after_its_listening_connection_is_dropped(api, pool):
    campaign_id = await due_campaign(api, pool, WEEKDAY_NOON + datetime.timedelta(days=1))
    woken: list = []

    async def submit(woken_id):
        woken.append(str(woken_id))
        return done_run()

    store = FailingTimerStore(PgTimerStore(pool), failures=0)
    scheduler = Scheduler(store, submit, FixedClock(WEEKDAY_NOON), max_backoff=0.05)
    listener = """SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'
                  AND pid <> pg_backend_pid()"""

    async def body():
        await wait_until(lambda: pool.fetchval(listener))
        await pool.execute(f"SELECT pg_terminate_backend(pid) FROM ({listener}) l")  # as a PostgreSQL restart does
        await wait_until(lambda: asyncio.sleep(0, store.listens == 2))
        await wait_until(lambda: pool.fetchval(listener))
        await wake_via_notify(pool, campaign_id, WEEKDAY_NOON)
        await wait_until(lambda: asyncio.sleep(0, woken == [campaign_id]))

    await running(scheduler, body)
