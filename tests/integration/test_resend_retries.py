"""Campaign email sends heal from a flaky Resend: what passes by itself is retried with the same idempotency key
(capped, jittered backoff honouring Retry-After) until a budget runs out; only then does the lead fail, with
Resend's last error, or `unknown` when a try's answer was lost (Resend may have sent it). The real adapter against the local fake, on a clock that moves only
when the adapter sleeps."""
from __future__ import annotations

import asyncio
import random
import socket

import pytest

from outreach.actors.campaign_runner import CampaignRunner
from outreach.actors.dispatchers import EmailDispatcher, TelegramDispatcher
from outreach.providers.resend import RateLimiter, ResendEmail
from outreach.providers.sandbox import SandboxOutcomes, SandboxTelegram
from outreach.runtime.ports import OutboundEmail
from outreach.storage.run_store import PgRunStore, RedisEventSink
from tests.fakes.resend import FakeResend, Faults, Reply, error, rate_limited, server_error
from tests.integration.test_runner import WEEKDAY_NOON, FixedClock, campaign_with_leads

EMAIL = OutboundEmail(sender="Acme Sales <sales@acme.test>", to="olena@smile.example", reply_to=None,
                      subject="Fewer no-shows", text="Hi Olena")


class FakeTime:
    """Monotonic time that advances only when someone sleeps; notes every sleep."""

    def __init__(self):
        self.now = 500.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class RecordingLimiter(RateLimiter):
    def __init__(self, time: FakeTime):
        super().__init__(1000, clock=time, sleep=time.sleep)
        self.holds: list[float] = []

    def hold(self, seconds: float) -> None:
        self.holds.append(seconds)
        super().hold(seconds)


@pytest.fixture
def fake(resend):
    """The shared local Resend (tests/conftest.py), under the name these tests use."""
    return resend


@pytest.fixture
def time():
    return FakeTime()


def sender_for(fake: FakeResend, time: FakeTime, retry_seconds: float = 900, timeout: float = 2) -> ResendEmail:
    return ResendEmail(fake.api_key, fake.url(), timeout=timeout, retry_seconds=retry_seconds,
                       limiter=RecordingLimiter(time), clock=time, sleep=time.sleep, rng=random.Random(5))


async def send(sender: ResendEmail, key: str = "c:l:email", still_wanted=None):
    try:
        return await sender.send_email(EMAIL, key, still_wanted=still_wanted)
    finally:
        await sender.close()


async def test_5xx_and_429_are_retried_with_the_same_key_honouring_retry_after(fake, time):
    fake.queue(server_error(), rate_limited(retry_after=3), Reply(502, "<html>Bad gateway</html>"))
    sender = sender_for(fake, time)
    result = await send(sender)
    assert result.ok and result.provider_id == fake.sent[0]["id"]
    assert [request["key"] for request in fake.requests] == ["c:l:email"] * 4 and len(fake.sent) == 1
    backoffs = [seconds for seconds in time.slept if seconds >= 0.25]
    assert len(backoffs) == 3 and backoffs[1] >= 3, "Retry-After was not honoured"
    assert sender.limiter.holds and sender.limiter.holds[0] >= 3, "a 429 holds every send of the account"


@pytest.mark.parametrize("fault", ["reset", "hang"])
async def test_a_lost_answer_is_retried_with_its_key_and_the_email_goes_out_once(fake, time, fault):
    """Resend accepted the email, then the connection dropped (or the answer came after the timeout)."""
    fake.faults = Faults(**{fault: 1.0}, limit=1, hang_seconds=1.0)
    result = await send(sender_for(fake, time, timeout=0.3))
    assert fake.injected == [fault]
    assert result.ok and result.provider_id == fake.sent[0]["id"]
    assert len(fake.requests) == 2 and len(fake.sent) == 1


async def test_when_the_budget_runs_out_the_lead_fails_with_resends_last_error(fake, time):
    fake.queue(*[server_error()] * 20)
    result = await send(sender_for(fake, time, retry_seconds=5))
    assert (result.outcome, result.channel_blocked) == ("provider_error", False)
    assert "500 internal_server_error" in result.error and "gave up after" in result.error
    assert 1 < len(fake.requests) < 20 and time.now - 500.0 <= 5
    assert fake.sent == []


async def test_when_every_answer_was_lost_the_budget_ends_unknown_never_failed(fake, time):
    """Resend accepted the email each time and the connection dropped before the answer: it may have gone out."""
    fake.faults = Faults(reset=1.0)
    result = await send(sender_for(fake, time, retry_seconds=5))
    assert (result.outcome, result.channel_blocked) == ("unknown", False)
    assert "may have been sent" in result.error and "gave up after" in result.error
    assert len(fake.requests) > 1 and len(fake.sent) == 1  # every try carried the key: one email


async def test_one_lost_answer_among_refusals_still_ends_unknown(fake, time):
    fake.faults = Faults(reset=1.0, limit=1)
    fake.queue(*[server_error()] * 20)
    result = await send(sender_for(fake, time, retry_seconds=5))
    assert result.outcome == "unknown" and "500 internal_server_error" in result.error
    assert "an earlier try got no answer" in result.error and len(fake.sent) == 1


async def test_a_campaign_email_that_may_have_gone_out_is_never_followed_by_another_channel(
        api, pool, redis, fake, time):
    fake.faults = Faults(reset=1.0)
    leads = [{"firstName": "Olena", "email": "olena@smile.example", "telegramUsername": "olena_tg"}]
    campaign_id, _ = await campaign_with_leads(api, pool, 0, channels=("email", "telegram"), leads=leads)
    sender = sender_for(fake, time, retry_seconds=5)
    dispatchers = {"email": EmailDispatcher(sender, EMAIL.sender),
                   "telegram": TelegramDispatcher(SandboxTelegram(SandboxOutcomes("telegram", mix={"sent": 1.0})))}
    runner = CampaignRunner(campaign_id, PgRunStore(pool, campaign_id), RedisEventSink(redis, campaign_id),
                            dispatchers, clock=FixedClock(WEEKDAY_NOON))
    try:
        summary = await runner.run()
    finally:
        await sender.close()
    assert [(r["channel"], r["status"]) for r in summary["results"]] == [("email", "unknown")]
    attempts = await pool.fetch("SELECT channel::text, outcome FROM attempts WHERE campaign_id = $1", campaign_id)
    assert [(row["channel"], row["outcome"]) for row in attempts] == [("email", "unknown")]  # no Telegram try
    usage = await pool.fetchrow("SELECT emails, telegram FROM usage WHERE org_id = $1", api.org_id)
    assert (usage["emails"], usage["telegram"]) == (1, 0)  # it may have been sent: not refunded
    assert len(fake.sent) == 1


async def test_a_quota_or_a_bad_key_is_not_retried_but_blocks_the_channel(fake, time):
    fake.queue(error(429, "daily_quota_exceeded", "You have reached your daily email sending quota."),
               error(403, "validation_error", "The acme.test domain is not verified."))
    for _ in range(2):
        result = await send(sender_for(fake, time))
        assert result.channel_blocked and result.outcome in ("rate_limited", "provider_error")
    assert len(fake.requests) == 2 and time.slept == []


async def test_a_paused_campaign_takes_its_send_back_during_a_backoff(fake, time):
    fake.queue(rate_limited(retry_after=60))
    paused_at = time.now + 2
    result = await send(sender_for(fake, time), still_wanted=lambda: time.now < paused_at)
    assert (result.outcome, result.channel_blocked) == ("not_sent", True) and "paused" in result.error
    assert len(fake.requests) == 1 and time.now - paused_at < 0.5


async def test_an_unreachable_service_is_retried_and_holds_the_channel(time):
    fake = FakeResend()
    with socket.socket() as sock:  # a port bound but not listening: every try is refused
        sock.bind(("127.0.0.1", 0))
        fake.port = sock.getsockname()[1]
        sender = sender_for(fake, time, retry_seconds=3)
        result = await send(sender)
    assert result.outcome == "provider_error" and "unreachable" in result.error and "gave up" in result.error
    assert sender.limiter.holds, "an outage holds every send"


async def test_without_a_budget_the_first_answer_is_returned_as_before(fake, time):
    fake.queue(server_error())
    result = await send(sender_for(fake, time, retry_seconds=0))
    assert (result.outcome, result.channel_blocked) == ("provider_error", True) and len(fake.requests) == 1


async def test_a_send_that_stops_being_wanted_while_it_waits_for_a_turn_gets_none(time):
    limiter = RateLimiter(1, clock=time, sleep=time.sleep)
    assert await limiter.wait() == 0
    stop_at = time.now + 0.3
    assert await limiter.wait(lambda: time.now < stop_at) is None  # its turn was a second away
    assert time.now - stop_at < 0.2
