"""Email campaigns on Ray heal from a flaky world with nobody clicking anything: a flaky Resend, a run that dies
without recording it (its lease expires and a sweeper resumes it), several processes sharing one rate limit,
and a pause that takes effect within a second. Each test reads the fake Resend's own delivery log: every lead
emailed at most once, none lost, none left `unknown` or not finished."""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach import service
from outreach.actors import remote, senders
from outreach.actors.campaign_runner import RunnerOptions
from outreach.http.app import Deps, build_app
from outreach.providers import resend
from outreach.runtime.ports import OutboundEmail
from tests.conftest import tenant_on
from tests.fakes.resend import FakeResend, Faults
from tests.integration.test_execution import setup_campaign
from tests.integration.test_rate_limits import busiest_second

BASE = "/api/dashboard/campaigns"
ONE_EMAIL = OutboundEmail(sender="Api <api@outreach.test>", to="", reply_to=None, subject="Hello", text="Hi")
# Many sends in flight, as in production: the limiter, not the runner, decides the pace.
WIDE = RunnerOptions(batch_size=100, max_in_flight=1000, concurrency={"email": 500, "telegram": 4, "voice": 4})


@dataclasses.dataclass
class Stack:
    api: object
    settings: object
    runtime: remote.RayRuntime
    fake: FakeResend


@pytest.fixture
def fake(resend):
    """The shared local Resend (tests/conftest.py), under the name these tests use."""
    return resend


@pytest.fixture
async def email_stack(ray_cluster, ray_settings, settings, pool, redis, fake):
    """Factory: an org whose campaigns run on Ray through the real Resend adapter, pointed at the fake."""
    clients = []

    async def make(name: str = "healing", options: RunnerOptions = WIDE, **overrides) -> Stack:
        actor_settings = dataclasses.replace(ray_settings, **{
            "sandbox": False, "resend_api_key": fake.api_key, "resend_api_url": fake.url(),
            "email_from": "Runner <runner@outreach.test>", **overrides})
        runtime = remote.RayRuntime(actor_settings, options)
        client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, runtime=runtime)),
                                       host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return Stack(await tenant_on(client, pool, name), actor_settings, runtime, fake)

    yield make
    for client in clients:
        await client.close()


async def wait_until(condition, timeout: float, describe=None):
    """Poll `condition` (bounded); on a timeout, say what `describe()` sees."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not reached in {timeout} s: {await describe() if describe else ''}") from None


async def run_state(pool, campaign_id) -> dict:
    campaign = uuid.UUID(campaign_id)
    return {"status": await status_of(pool, campaign_id),
            "reason": await pool.fetchval("SELECT status_reason FROM campaigns WHERE id = $1", campaign),
            "leads": dict(await pool.fetch("SELECT state::text, count(*) FROM campaign_leads WHERE campaign_id = $1 "
                                           "GROUP BY 1", campaign))}


async def until_completed(pool, campaign_id, timeout: float) -> None:
    await wait_until(lambda: status_is(pool, campaign_id, "completed"), timeout,
                     describe=lambda: run_state(pool, campaign_id))


async def status_of(pool, campaign_id) -> str:
    return await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", uuid.UUID(campaign_id))


async def assert_each_lead_emailed_once(pool, fake: FakeResend, campaign_id: str) -> None:
    """From the fake's delivery log and the campaign's record: all sent, once, nothing unknown or pending."""
    emails = [row["email"] for row in await pool.fetch(
        "SELECT l.email FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id WHERE cl.campaign_id = $1",
        uuid.UUID(campaign_id))]
    delivered = collections.Counter(to for email in fake.sent for to in email["to"] if to in set(emails))
    assert set(delivered) == set(emails), f"{len(set(emails) - set(delivered))} lead(s) never emailed"
    assert max(delivered.values()) == 1, "a lead was emailed twice"
    states = collections.Counter(row["state"] for row in await pool.fetch(
        "SELECT state::text FROM campaign_leads WHERE campaign_id = $1", uuid.UUID(campaign_id)))
    assert states == {"sent": len(emails)}
    assert await status_of(pool, campaign_id) == "completed"


async def test_a_flaky_resend_heals_without_anyone_clicking(email_stack, pool, fake):
    stack = await email_stack(resend_rate_per_second=100, resend_timeout_seconds=1)
    fake.faults = Faults(server_error=0.10, rate_limited=0.05, reset=0.05, hang=0.02, hang_seconds=1.5)
    campaign_id = await setup_campaign(stack.api, pool, 150)

    assert (await stack.api.post(f"{BASE}/{campaign_id}/start")).status == 200
    await until_completed(pool, campaign_id, timeout=90)

    assert {"server_error", "rate_limited", "reset", "hang"} <= set(fake.injected)
    await assert_each_lead_emailed_once(pool, fake, campaign_id)
    detail = (await stack.api.get(f"{BASE}/{campaign_id}")).body
    assert detail["status"] == "completed" and detail["statusReason"] is None


async def status_is(pool, campaign_id, status: str) -> bool:
    return await status_of(pool, campaign_id) == status


async def test_a_run_that_died_without_recording_it_is_resumed_when_its_lease_expires(email_stack, pool, fake):
    stack = await email_stack(resend_rate_per_second=25, campaign_lease_seconds=3)
    campaign_id = await setup_campaign(stack.api, pool, 100)
    assert (await stack.api.post(f"{BASE}/{campaign_id}/start")).status == 200
    await wait_until(lambda: some_sent(fake, 20), timeout=30)

    # The actor's process goes and Ray does not bring it back: the run cannot record anything.
    remote.ray.kill(remote.existing_campaign_actor(campaign_id), no_restart=True)
    stranded = await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE campaign_id = $1 AND state = "
                                   "'in_progress'", uuid.UUID(campaign_id))
    assert await status_of(pool, campaign_id) == "active" and stranded > 0
    killed_at = time.monotonic()

    stop = asyncio.Event()  # the sweeper every API process runs
    sweeper = asyncio.create_task(service.sweep_leases(pool, stack.runtime, stack.settings, until=stop))
    try:
        await until_completed(pool, campaign_id, timeout=60)
    finally:
        stop.set()
        await sweeper
    assert time.monotonic() - killed_at < 60
    await assert_each_lead_emailed_once(pool, fake, campaign_id)
    await wait_until(lambda: lease_released(pool, campaign_id), timeout=5)  # a finished run gives its lease up


async def lease_released(pool, campaign_id) -> bool:
    return not await pool.fetchval("SELECT count(*) FROM campaign_leases WHERE campaign_id = $1",
                                   uuid.UUID(campaign_id))


async def some_sent(fake: FakeResend, count: int) -> bool:
    return len(fake.sent) >= count


async def test_several_processes_and_campaigns_keep_to_one_shared_rate(email_stack, pool, redis, fake):
    stack = await email_stack(resend_rate_per_second=40)
    campaigns = [await setup_campaign(stack.api, pool, 0) for _ in range(3)]
    await add_leads(stack, pool, campaigns, per_campaign=80)
    # This (API) process sends through the account too, as `email/send` does: its own limiter, the same schedule.
    api_email = resend.ResendEmail(fake.api_key, fake.url(),
                                   limiter=senders.shared_limiter(redis, "resend", fake.api_key, 40))

    for campaign_id in campaigns:  # three campaign actors: three processes booking turns on one schedule
        assert (await stack.api.post(f"{BASE}/{campaign_id}/start")).status == 200
    try:
        sent = await asyncio.gather(*(api_email.send_email(dataclasses.replace(ONE_EMAIL, to=f"api{index}@example.com"),
                                                           f"api-{index}") for index in range(40)))
    finally:
        await api_email.close()
    for campaign_id in campaigns:
        await until_completed(pool, campaign_id, timeout=60)

    assert all(result.ok for result in sent)
    assert len(fake.requests) == 280
    assert busiest_second([request["at"] for request in fake.requests]) <= 44, "over the limit by more than 10%"
    for campaign_id in campaigns:
        await assert_each_lead_emailed_once(pool, fake, campaign_id)


async def add_leads(stack: Stack, pool, campaigns: list[str], per_campaign: int) -> None:
    rows = [(uuid.uuid4(), stack.api.org_id, f"L{index}", f"l{index}@example.com")
            for index in range(per_campaign * len(campaigns))]
    await pool.executemany("INSERT INTO leads (id, org_id, first_name, email) VALUES ($1, $2, $3, $4)", rows)
    for index, campaign_id in enumerate(campaigns):
        ids = [str(row[0]) for row in rows[index * per_campaign:(index + 1) * per_campaign]]
        assert (await stack.api.post(f"{BASE}/{campaign_id}/leads", json={"leadIds": ids})).status == 200


async def test_pause_takes_every_waiting_lead_back_within_a_second(email_stack, pool, fake):
    stack = await email_stack(resend_rate_per_second=5)  # most leads wait on the limiter
    campaign_id = await setup_campaign(stack.api, pool, 60)
    assert (await stack.api.post(f"{BASE}/{campaign_id}/start")).status == 200
    await wait_until(lambda: some_sent(fake, 3), timeout=30)

    assert (await stack.api.post(f"{BASE}/{campaign_id}/pause")).status == 200
    paused_at = time.monotonic()
    await wait_until(lambda: none_in_progress(pool, campaign_id), timeout=5)
    assert time.monotonic() - paused_at < 1.0

    sent_when_paused = len(fake.sent)
    assert (await stack.api.post(f"{BASE}/{campaign_id}/start")).status == 200
    await until_completed(pool, campaign_id, timeout=90)
    assert len(fake.sent) > sent_when_paused
    await assert_each_lead_emailed_once(pool, fake, campaign_id)


async def test_pause_is_prompt_with_leads_queued_behind_the_send_slots(email_stack, pool, fake):
    """Leads claimed but waiting for one of the channel's send slots, and sends waiting on the limiter: after
    `pause`, all of them are back to pending within a second; what went out went out once."""
    queued = RunnerOptions(batch_size=100, max_in_flight=1000, concurrency={"email": 100, "telegram": 4, "voice": 4})
    stack = await email_stack(options=queued, resend_rate_per_second=5)
    campaign_id = await setup_campaign(stack.api, pool, 400)
    assert (await stack.api.post(f"{BASE}/{campaign_id}/start")).status == 200
    await wait_until(lambda: some_sent(fake, 3), timeout=30)
    assert not await none_in_progress(pool, campaign_id)

    assert (await stack.api.post(f"{BASE}/{campaign_id}/pause")).status == 200
    paused_at = time.monotonic()
    await wait_until(lambda: none_in_progress(pool, campaign_id), timeout=5, describe=lambda: run_state(pool, campaign_id))
    assert time.monotonic() - paused_at < 1.0

    states = dict(await pool.fetch("SELECT state::text, count(*) FROM campaign_leads WHERE campaign_id = $1 GROUP BY 1",
                                   uuid.UUID(campaign_id)))
    assert set(states) == {"sent", "pending"} and states["sent"] == len(fake.sent)
    assert len({to for email in fake.sent for to in email["to"]}) == len(fake.sent)


async def none_in_progress(pool, campaign_id) -> bool:
    return not await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE campaign_id = $1 AND state = "
                                   "'in_progress'", uuid.UUID(campaign_id))


async def test_a_run_stopped_by_something_a_person_must_fix_says_why(email_stack, pool, fake):
    stack = await email_stack(resend_api_key=None)  # email cannot be sent until someone configures it
    campaign_id = await setup_campaign(stack.api, pool, 5)

    assert (await stack.api.post(f"{BASE}/{campaign_id}/start")).status == 200
    await wait_until(lambda: status_is(pool, campaign_id, "paused"), timeout=30)

    detail = (await stack.api.get(f"{BASE}/{campaign_id}")).body
    assert detail["status"] == "paused" and "RESEND_API_KEY" in detail["statusReason"]
    assert fake.requests == []
