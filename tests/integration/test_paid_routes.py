"""Routes that call a paid provider are metered or rate-limited per organization: email/test counts as an email;
email/generate and numbers/available take a token from a Redis bucket shared by every API process."""
from __future__ import annotations

import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.runtime import errors
from outreach.storage import db, email_senders, token_bucket
from tests.conftest import Api, tenant_on
from tests.fakes import openrouter as ai
from tests.fakes.resend import server_error
from tests.fakes.twilio import twilio_port
from tests.integration.test_email_routes import http, openrouter, ports, session  # noqa: F401 (fixtures)

DASH = "/api/dashboard"


async def replica(settings, pool, redis, **deps) -> TestClient:
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, **deps)), host="127.0.0.1"))
    await client.start_server()
    return client


async def emails_used(pool, org_id) -> int:
    return await pool.fetchval("SELECT coalesce(sum(emails), 0) FROM usage WHERE org_id = $1", org_id)


async def test_a_test_email_counts_as_an_email_and_is_refused_past_the_limit(http, clerk, pool, resend):  # noqa: F811
    me = await session(http, clerk)
    await me.put(f"{DASH}/channels", json={"channel": "email", "config": {"fromEmail": "sales@acme.test"}})
    org_id = await pool.fetchval("SELECT id FROM organizations")
    async with db.transaction(pool) as conn:  # proven (the confirmation link was opened)
        await email_senders.prove_address(conn, org_id, "sales@acme.test", "link")
    await pool.execute("UPDATE organizations SET plan = 'starter' WHERE id = $1", org_id)  # 500 emails a month
    assert (await me.post(f"{DASH}/email/test")).status == 200
    assert await emails_used(pool, org_id) == 1
    resend.queue(server_error())  # not sent: not counted
    assert (await me.post(f"{DASH}/email/test")).status == 502
    assert await emails_used(pool, org_id) == 1
    await pool.execute("UPDATE usage SET emails = 500 WHERE org_id = $1", org_id)
    reply = await me.post(f"{DASH}/email/test")
    assert reply.status == 429 and reply.body["error"].startswith("Email limit reached (500/500) on the starter plan")
    assert int(reply.headers["Retry-After"]) > 0
    assert len(resend.sent) == 1 and await emails_used(pool, org_id) == 500


async def test_email_generate_is_rate_limited_per_org_across_replicas(settings, pool, redis, ports):  # noqa: F811
    limited = dataclasses.replace(settings, email_generate_per_minute=3)
    replicas = [await replica(limited, pool, redis, **ports) for _ in range(2)]
    try:
        acme = await tenant_on(replicas[0], pool, "acme")
        statuses = [(await Api(replicas[index % 2], acme.token).post(f"{DASH}/email/generate",
                                                                     json={"type": "initial"})).status
                    for index in range(3)]
        assert statuses == [200] * 3
        reply = await Api(replicas[1], acme.token).post(f"{DASH}/email/generate", json={"type": "initial"})
        assert (reply.status, reply.body) == (429, {"error": "Too many email draft requests: at most 3 a minute. "
                                                             "Try again later."})
        assert 1 <= int(reply.headers["Retry-After"]) <= 20
        other = await tenant_on(replicas[1], pool, "globex")  # another organization has its own bucket
        assert (await other.post(f"{DASH}/email/generate", json={"type": "initial"})).status == 200
    finally:
        for client in replicas:
            await client.close()


async def test_number_search_is_rate_limited_per_org(settings, pool, redis, fake_twilio):
    limited = dataclasses.replace(settings, number_search_per_minute=2, twilio_account_sid=fake_twilio.account_sid,
                                  twilio_auth_token=fake_twilio.auth_token, twilio_base_url=fake_twilio.url())
    client = await replica(limited, pool, redis, twilio=twilio_port(fake_twilio))
    try:
        acme = await tenant_on(client, pool, "acme")
        assert [(await acme.get(f"{DASH}/numbers/available")).status for _ in range(2)] == [200, 200]
        reply = await acme.get(f"{DASH}/numbers/available")
        assert reply.status == 429 and reply.body["error"].startswith("Too many number search requests")
        assert 1 <= int(reply.headers["Retry-After"]) <= 30
        assert len(fake_twilio.searches) == 2
    finally:
        await client.close()


async def test_the_bucket_refills_with_time_and_a_refusal_takes_nothing(redis):
    now = [1000.0]
    bucket = token_bucket.TokenBucket(redis, "test", per_minute=6, clock=lambda: now[0])  # one every 10 s
    for _ in range(6):
        await bucket.take("org", "test")
    with pytest.raises(errors.RateLimited) as refused:
        await bucket.take("org", "test")
    assert refused.value.retry_after == 10
    now[0] += 4
    with pytest.raises(errors.RateLimited) as refused:
        await bucket.take("org", "test")
    assert refused.value.retry_after == 6  # the refusal took nothing: the token is still 6 s away
    now[0] += 6
    await bucket.take("org", "test")
    with pytest.raises(errors.RateLimited):
        await bucket.take("org", "test")
    now[0] += 3600  # a long pause refills to the burst size, no more
    for _ in range(6):
        await bucket.take("org", "test")
    with pytest.raises(errors.RateLimited):
        await bucket.take("org", "test")
