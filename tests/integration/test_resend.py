"""The real Resend adapter against a local server speaking Resend's wire format; and an email campaign on Ray
sent through it."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.actors import remote, senders
from outreach.actors.dispatchers import EmailDispatcher
from outreach.http.app import Deps, build_app
from outreach.runtime import templates
from outreach.runtime.config import Settings
from outreach.runtime.errors import ConfigError
from outreach.runtime.ports import OutboundEmail, SendJob
from outreach.providers.resend import RateLimiter, ResendEmail, email_html
from tests.conftest import TEST_RUNNER_OPTIONS, tenant_on
from tests.fakes.resend import Reply, error, invalid_recipient, rate_limited, server_error
from tests.integration.test_execution import setup_campaign
from tests.integration.test_runner import TEMPLATES

EMAIL = OutboundEmail(sender="Acme Sales <sales@acme.test>", to="olena@smile.example", reply_to="reply@acme.test",
                      subject="Fewer no-shows", text="Hi Olena,\n\n<b>Smile & Co</b> deserve better.",
                      tags=(("org_id", "8a0c5b0e-3f57-4a52-9a83-0d1d1f4e9a11"),))


@pytest.fixture
def fake(resend):
    """The shared local Resend (tests/conftest.py), under the name these tests use."""
    return resend


@pytest.fixture
async def client(fake):
    sender = ResendEmail(fake.api_key, fake.url(), rate_per_second=1000, timeout=2)
    yield sender
    await sender.close()


async def wait_for(condition, timeout: float = 10):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# --- the adapter ------------------------------------------------------------------------------------


async def test_send_posts_resends_wire_format_with_the_idempotency_key(fake, client):
    result = await client.send_email(EMAIL, "campaign-1:lead-1:email")
    assert result.ok and not result.channel_blocked
    assert result.provider_id == fake.sent[0]["id"]
    request = fake.requests[0]
    assert request["headers"]["Authorization"] == "Bearer re_test_key"
    assert request["headers"]["Idempotency-Key"] == "campaign-1:lead-1:email"
    assert request["headers"]["Content-Type"].startswith("application/json")
    body = json.loads(request["body"])
    assert body == {
        "from": "Acme Sales <sales@acme.test>", "to": ["olena@smile.example"], "reply_to": "reply@acme.test",
        "subject": "Fewer no-shows", "text": EMAIL.text,
        "html": "Hi Olena,<br /><br />&lt;b&gt;Smile &amp; Co&lt;/b&gt; deserve better.",
        "tags": [{"name": "org_id", "value": "8a0c5b0e-3f57-4a52-9a83-0d1d1f4e9a11"}],
    }


async def test_a_retry_with_the_same_key_returns_the_first_id_and_sends_nothing(fake, client):
    first = await client.send_email(EMAIL, "k-1")
    again = await client.send_email(EMAIL, "k-1")
    other = await client.send_email(EMAIL, "k-2")
    assert again.ok and again.provider_id == first.provider_id
    assert other.provider_id != first.provider_id
    assert [email["key"] for email in fake.sent] == ["k-1", "k-2"]


async def test_the_same_key_with_other_content_counts_as_already_sent(fake, client):
    """After a crash an AI draft is written again and differs: Resend refuses the key (409), the lead was emailed."""
    await client.send_email(EMAIL, "k-1")
    result = await client.send_email(dataclasses.replace(EMAIL, text="A different draft"), "k-1")
    assert result.ok and result.provider_id is None
    assert len(fake.sent) == 1


@pytest.mark.parametrize("reply, outcome, blocked, retry_after, words", [
    (invalid_recipient(), "invalid_recipient", False, None, "422 validation_error"),
    (error(422, "missing_required_field", "Missing `subject` field."), "rejected", False, None, "subject"),
    (error(422, "invalid_from_address", "Invalid `from` field."), "provider_error", True, None, "from"),
    (error(403, "validation_error", "The acme.test domain is not verified."), "provider_error", True, None,
     "not verified"),
    (error(401, "missing_api_key", "Missing API key in the authorization header."), "provider_error", True, None,
     "401"),
    (rate_limited(retry_after=2), "rate_limited", True, 2, "429 rate_limit_exceeded"),
    (error(429, "daily_quota_exceeded", "You have reached your daily email sending quota."), "rate_limited", True,
     None, "quota"),
    (server_error(), "provider_error", True, None, "500 internal_server_error"),
    (Reply(502, "<html>Bad gateway</html>"), "provider_error", True, None, "<html>Bad gateway"),
])
async def test_every_error_is_mapped_to_the_lead_or_the_channel(fake, client, reply, outcome, blocked, retry_after,
                                                                words):
    fake.queue(reply)
    result = await client.send_email(EMAIL, "k-err")
    assert (result.outcome, result.channel_blocked, result.retry_after) == (outcome, blocked, retry_after)
    assert not result.ok and words in result.error and result.error.startswith("Resend refused the email")
    assert fake.sent == []


async def test_the_fakes_own_validation_reaches_the_adapter_as_the_leads_failure(fake, client):
    result = await client.send_email(dataclasses.replace(EMAIL, to="not-an-address"), "k-bad")
    assert result.outcome == "invalid_recipient" and not result.channel_blocked


async def test_a_wrong_key_blocks_the_channel(fake):
    sender = ResendEmail("re_wrong", fake.url())
    try:
        result = await sender.send_email(EMAIL, "k")
    finally:
        await sender.close()
    assert result.channel_blocked and "missing_api_key" in result.error


async def test_a_slow_answer_times_out_and_the_retry_with_its_key_sends_once(fake):
    sender = ResendEmail(fake.api_key, fake.url(), timeout=0.3)
    try:
        fake.hold()
        result = await sender.send_email(EMAIL, "k-slow")
        # Resend may have accepted it: the campaign ends the lead `unknown` rather than trying again
        assert (result.outcome, result.channel_blocked) == ("unknown", False)
        assert "may have been sent" in result.error
        fake.release()  # Resend finishes the send the client gave up on
        await wait_for(lambda: len(fake.sent) == 1)
        retried = await sender.send_email(EMAIL, "k-slow")
    finally:
        await sender.close()
    assert retried.ok and retried.provider_id == fake.sent[0]["id"]
    assert len(fake.sent) == 1 and len(fake.requests) == 2


async def test_an_unreachable_service_blocks_the_channel():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sender = ResendEmail("re_test_key", f"http://127.0.0.1:{port}")
    try:
        result = await sender.send_email(EMAIL, "k")
    finally:
        await sender.close()
    assert result.channel_blocked and result.error.startswith("Resend is unreachable")


async def test_the_rate_limiter_spaces_requests():
    now, slept = [100.0], []

    async def sleep(seconds):
        slept.append(round(seconds, 6))

    limiter = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    waits = await asyncio.gather(*(limiter.wait() for _ in range(4)))
    assert [round(wait, 6) for wait in waits] == [0, 0.25, 0.5, 0.75] and slept == [0.25, 0.5, 0.75]
    now[0] = 200.0  # idle for a while: no debt carried over
    assert await limiter.wait() == 0
    with pytest.raises(ValueError):
        RateLimiter(0)


async def test_the_rate_comes_from_the_setting():
    assert ResendEmail("re_x", "http://127.0.0.1:9", rate_per_second=10).limiter.interval == pytest.approx(0.1)


def test_the_resend_settings_are_read_from_the_environment():
    defaults = Settings.from_env({})
    assert (defaults.resend_rate_per_second, defaults.resend_webhook_secret) == (10, None)
    settings = Settings.from_env({"RESEND_RATE_PER_SECOND": "2", "RESEND_WEBHOOK_SECRET": " whsec_abc "})
    assert (settings.resend_rate_per_second, settings.resend_webhook_secret) == (2, "whsec_abc")
    for bad in ("0", "fast"):
        with pytest.raises(ConfigError, match="RESEND_RATE_PER_SECOND"):
            Settings.from_env({"RESEND_RATE_PER_SECOND": bad})


def test_html_is_escaped_line_by_line():
    assert email_html('Hi <script>alert("x")</script>\r\nBye') == \
        "Hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br />Bye"


# --- a campaign on Ray through the real adapter --------------------------------------------------------


@pytest.fixture
async def resend_api(ray_cluster, ray_settings, settings, pool, redis, fake):
    """An org whose campaigns run on Ray with real email: sandbox off, Resend pointed at the fake."""

    actor_settings = dataclasses.replace(ray_settings, sandbox=False, resend_api_key=fake.api_key,
                                         resend_api_url=fake.url(), email_from="Runner <runner@outreach.test>")
    runtime = remote.RayRuntime(actor_settings, TEST_RUNNER_OPTIONS)
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, runtime=runtime)),
                                   host="127.0.0.1"))
    await client.start_server()
    yield await tenant_on(client, pool, "resend runner"), actor_settings
    await client.close()


async def test_an_email_campaign_on_ray_goes_through_resend_with_idempotency_keys(resend_api, pool, fake):
    api, actor_settings = resend_api
    campaign_id = await setup_campaign(api, pool, 12)
    leads = [dict(row) for row in await pool.fetch(
        "SELECT id, first_name, email, company FROM leads WHERE org_id = $1 ORDER BY id", api.org_id)]
    crashed = leads[0]
    # A previous incarnation of the runner sent this lead's email, then died before recording it.
    key = f"{campaign_id}:{crashed['id']}:email"
    before = await send_as_the_runner(actor_settings, fake, campaign_id, api.org_id, crashed, key)
    await pool.execute("UPDATE campaign_leads SET state = 'in_progress' WHERE lead_id = $1", crashed["id"])
    await pool.execute("INSERT INTO attempts (campaign_id, lead_id, org_id, channel, idempotency_key) "
                       "VALUES ($1, $2, $3, 'email', $4)", uuid.UUID(campaign_id), crashed["id"], api.org_id, key)

    reply = await api.post(f"/api/dashboard/campaigns/{campaign_id}/execute")

    assert reply.status == 200, reply.body
    assert (reply.body["progress"]["succeeded"], reply.body["progress"]["failed"]) == (12, 0)
    assert len(fake.sent) == 12, "the crashed lead was emailed twice"
    assert sorted(email["key"] for email in fake.sent) == sorted(f"{campaign_id}:{lead['id']}:email" for lead in leads)
    assert all(email["tags"] == [{"name": "org_id", "value": str(api.org_id)}] for email in fake.sent)
    assert all(email["from"] == "Runner <runner@outreach.test>" for email in fake.sent)
    attempts = {row["lead_id"]: row for row in await pool.fetch(
        "SELECT lead_id, idempotency_key, provider_id, outcome FROM attempts WHERE campaign_id = $1",
        uuid.UUID(campaign_id))}
    assert attempts[crashed["id"]]["provider_id"] == before.provider_id
    assert {row["outcome"] for row in attempts.values()} == {"sent"}
    assert {row["provider_id"] for row in attempts.values()} == {email["id"] for email in fake.sent}
    logged = await pool.fetch("SELECT provider_id, status::text FROM messages WHERE campaign_id = $1",
                              uuid.UUID(campaign_id))
    assert len(logged) == 12 and {row["status"] for row in logged} == {"sent"}
    assert {row["provider_id"] for row in logged} == {email["id"] for email in fake.sent}


async def send_as_the_runner(settings, fake, campaign_id, org_id, lead: dict, key: str):
    """The email the runner sends for this lead (same template, sender, tags and key), sent once now."""
    template = templates.email_template(TEMPLATES)
    subject, text = templates.render(template[0], lead), templates.render(template[1], lead)
    sender = ResendEmail(fake.api_key, fake.url())
    try:
        job = SendJob(campaign_id, str(org_id), lead, "email", key, subject, text)
        # the same List-Unsubscribe headers as the runner's dispatcher, so the same key carries the same body
        dispatcher = EmailDispatcher(sender, settings.email_from,
                                     unsubscribe=senders.unsubscribe_links(settings, settings.email_from))
        result = await dispatcher.dispatch(job)
    finally:
        await sender.close()
    assert result.ok and len(fake.sent) == 1
    return result
