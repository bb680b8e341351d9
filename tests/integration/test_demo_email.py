"""POST /api/demo/email: one demo email per address per hour across API replicas (Redis), and GET /api/demo/status."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.resend import ResendEmail
from tests.fakes.resend import server_error

PATH = "/api/demo/email"
SENDER = "Outreach Demo <demo@outreach.test>"
ALREADY = {"error": "Email already sent to this address (rate limit: one an hour). Try again later."}



@pytest.fixture
async def make_replica(settings, pool, redis, resend):
    """Factory: an API replica (its own app and Resend client) sharing PostgreSQL and Redis with the others."""
    clients, senders = [], []

    async def make(*, email=True, email_from=SENDER, **changes) -> TestClient:
        sender = ResendEmail(resend.api_key, resend.url(), rate_per_second=1000) if email else None
        senders.extend([sender] if sender else [])
        changes = {"email_from": email_from, "resend_api_key": resend.api_key, **changes}
        configured = dataclasses.replace(settings, **changes)
        client = TestClient(TestServer(build_app(configured, Deps(pool=pool, redis=redis, email=sender)),
                                       host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
    for sender in senders:
        await sender.close()


async def post(client, body) -> tuple[int, dict, dict]:
    async with client.post(PATH, json=body) as response:
        return response.status, await response.json(), dict(response.headers)


async def test_the_demo_email_is_sent_once_per_address_per_hour(make_replica, resend):
    replica = await make_replica()
    status, body, _ = await post(replica, {"email": "  Visitor@Example.COM "})
    assert (status, body) == (200, {"success": True})
    [sent] = resend.sent
    assert sent["to"] == ["visitor@example.com"] and sent["from"] == SENDER
    assert sent["subject"] == "Quick question for you" and sent["key"].startswith("demo:")
    status, body, headers = await post(replica, {"email": "visitor@example.com"})
    assert (status, body) == (429, ALREADY) and "already" in body["error"]
    assert 3500 < int(headers["Retry-After"]) <= 3600
    assert (await post(replica, {"email": "someone.else@example.com"}))[0] == 200
    assert len(resend.sent) == 2


async def test_the_limit_holds_across_replicas_and_concurrent_clicks(make_replica, resend):
    replicas = [await make_replica(), await make_replica()]
    results = await asyncio.gather(*(post(replicas[index % 2], {"email": "race@example.com"}) for index in range(8)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [429] * 7
    assert len(resend.sent) == 1


async def test_a_failed_send_does_not_use_up_the_hour(make_replica, resend, redis):
    replica = await make_replica()
    resend.queue(server_error())
    status, body, _ = await post(replica, {"email": "retry@example.com"})
    assert status == 502 and body["error"].startswith("Failed to send email: Resend refused the email (500")
    assert await redis.keys("demo:email:*") == []
    assert (await post(replica, {"email": "retry@example.com"}))[0] == 200


@pytest.mark.parametrize("body", [{}, {"email": ""}, {"email": "a@b"}, {"email": "no-at-sign.example.com"},
                                  {"email": 42}, {"email": "two@@example.com"}, {"email": "x@example.com\nBcc: y"}])
async def test_an_invalid_address_is_a_400(make_replica, resend, body):
    status, reply, _ = await post(await make_replica(), body)
    assert (status, reply) == (400, {"error": "Valid email is required"})
    assert resend.requests == []


async def test_malformed_json_is_a_400(make_replica):
    replica = await make_replica()
    async with replica.post(PATH, data=b"{nope", headers={"Content-Type": "application/json"}) as response:
        assert (response.status, await response.json()) == (400, {"error": "Invalid JSON body"})


async def test_not_configured_is_a_503_naming_the_setting(make_replica, redis):
    no_email = await make_replica(email=False)
    status, body, _ = await post(no_email, {"email": "v@example.com"})
    assert (status, body) == (503, {"error": "Email is not configured: set RESEND_API_KEY"})
    no_sender = await make_replica(email_from=None)
    status, body, _ = await post(no_sender, {"email": "v@example.com"})
    assert (status, body) == (503, {"error": "Demo email sender is not configured: set OUTREACH_EMAIL_FROM"})
    assert await redis.keys("demo:email:*") == []


async def test_status_says_whether_the_demo_email_can_be_sent(make_replica):
    async def status_of(client) -> dict:
        async with client.get("/api/demo/status") as response:
            assert response.status == 200
            return await response.json()

    assert (await status_of(await make_replica()))["email"] is True
    assert (await status_of(await make_replica(email_from=None)))["email"] is False
    assert (await status_of(await make_replica(resend_api_key=None)))["email"] is False


async def test_one_caller_gets_a_few_demo_emails_an_hour(make_replica):
    demo = await make_replica()
    replies = [await demo.post("/api/demo/email", json={"email": f"visitor{index}@example.com"})
               for index in range(7)]
    assert [reply.status for reply in replies] == [200] * 5 + [429] * 2
    assert "Too many demo emails" in (await replies[-1].json())["error"]
    assert "rate" in (await replies[-1].json())["error"] and "rate" in ALREADY["error"]  # what the landing page looks for


async def test_only_requests_that_pass_the_caller_and_address_checks_count_towards_the_day(make_replica, resend):
    """Repeating one address (refused per address) does not spend the day's budget of the demo."""
    replica = await make_replica(demo_emails_per_day=2)
    assert (await post(replica, {"email": "first@example.com"}))[0] == 200
    for _ in range(2):
        assert (await post(replica, {"email": "first@example.com"}))[1] == ALREADY
    assert (await post(replica, {"email": "second@example.com"}))[0] == 200
    status, body, _ = await post(replica, {"email": "third@example.com"})  # the caller's fifth: the day is spent
    assert (status, body) == (429, {"error": "The demo has reached its daily rate limit. Try again tomorrow."})
    assert len(resend.sent) == 2
    status, _, _ = await post(replica, {"email": "first@example.com"})  # the caller's sixth: refused per caller
    assert status == 429
    assert [sent["to"] for sent in resend.sent] == [["first@example.com"], ["second@example.com"]]
