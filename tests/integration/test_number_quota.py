"""Phone numbers per plan: a quota checked atomically, and a failed purchase never releasing another org's number."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.runtime import errors, policy
from outreach.runtime.models import Plan
from tests.conftest import Api, tenant_on
from tests.factories import insert_number
from tests.fakes.twilio import twilio_port
from tests.integration.test_numbers_twilio import PUBLIC_URL

BASE = "/api/dashboard/numbers"


async def client_for(settings, pool, redis, port) -> TestClient:
    app = build_app(settings, Deps(pool=pool, redis=redis, twilio=port))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
def twilio_settings(settings, fake_twilio):
    return dataclasses.replace(settings, twilio_account_sid=fake_twilio.account_sid,
                               twilio_auth_token=fake_twilio.auth_token, twilio_base_url=fake_twilio.url(),
                               public_url=PUBLIC_URL)


@pytest.fixture
async def twilio_client(twilio_settings, pool, redis, fake_twilio):
    client = await client_for(twilio_settings, pool, redis, twilio_port(fake_twilio))
    yield client
    await client.close()


def stock(fake_twilio, count: int) -> list[str]:
    """`count` more numbers for sale at the fake Twilio."""
    numbers = [f"+1628555{index:04d}" for index in range(count)]
    fake_twilio.inventory["US"].extend({"phone_number": number, "friendly_name": number, "locality": None,
                                        "region": None, "capabilities": {"voice": True}} for number in numbers)
    return numbers


async def test_ten_concurrent_purchases_with_room_for_one_buy_exactly_one(twilio_client, pool, fake_twilio):
    api = await tenant_on(twilio_client, pool, "acme", plan="growth")  # quota 3
    for index in range(2):
        await insert_number(pool, api.org_id, number=f"+1510555000{index}", provider_sid=f"PN{index}")
    numbers = stock(fake_twilio, 10)
    replies = await asyncio.gather(*(api.post(BASE, json={"phoneNumber": number}) for number in numbers))
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [201] + [429] * 9, [reply.body for reply in replies]
    refused = next(reply for reply in replies if reply.status == 429)
    assert refused.body["error"] == ("Phone number limit reached (3/3) on the growth plan. Release a number or "
                                     "upgrade the plan.")
    assert (refused.body["limit"], refused.body["used"], refused.body["plan"]) == (3, 3, "growth")
    assert len(fake_twilio.owned) == 1
    assert await pool.fetchval("SELECT count(*) FROM phone_numbers WHERE org_id = $1", api.org_id) == 3
    listed = (await api.get(BASE)).body["numbers"]
    assert sorted(row["status"] for row in listed) == ["active"] * 3


async def test_the_quota_follows_the_plan_table(twilio_settings, pool, redis, fake_twilio):
    table = {**policy.DEFAULT_PLAN_LIMITS,
             Plan.STARTER: dataclasses.replace(policy.DEFAULT_PLAN_LIMITS[Plan.STARTER], numbers=None),
             Plan.ENTERPRISE: dataclasses.replace(policy.DEFAULT_PLAN_LIMITS[Plan.ENTERPRISE], numbers=0)}
    client = await client_for(dataclasses.replace(twilio_settings, plan_limits=table), pool, redis,
                              twilio_port(fake_twilio))
    try:
        unlimited = await tenant_on(client, pool, "unlimited", plan="starter")
        numbers = stock(fake_twilio, 3)
        for number in numbers:
            assert (await unlimited.post(BASE, json={"phoneNumber": number})).status == 201
        none_allowed = await tenant_on(client, pool, "none", plan="enterprise")
        reply = await none_allowed.post(BASE, json={"phoneNumber": "+14155550101"})
        assert reply.status == 429 and reply.body["error"].startswith("Phone number limit reached (0/0)")
    finally:
        await client.close()
    assert len(fake_twilio.owned) == 3


async def test_a_lost_answer_never_releases_a_number_another_org_holds(settings, pool, redis, fake_twilio):
    """Twilio's answer to a purchase is lost while the number is another organization's: before, the account
    was searched for the number and its sid (the other org's) released."""
    real = twilio_port(fake_twilio)

    class LostAnswer:
        async def buy_number(self, phone_number, voice_url, status_callback):
            raise errors.ProviderError("Twilio request failed: timeout", status=None)

        def __getattr__(self, name):
            return getattr(real, name)

    theirs_sid = fake_twilio.own("+14155550101")
    client = await client_for(dataclasses.replace(settings, public_url=PUBLIC_URL), pool, redis, LostAnswer())
    try:
        owner = await tenant_on(client, pool, "owner", plan="starter")
        await insert_number(pool, owner.org_id, number="+14155550101", provider_sid=theirs_sid)
        buyer = await tenant_on(client, pool, "buyer", plan="starter")
        reply = await buyer.post(BASE, json={"phoneNumber": "+14155550101"})
        assert (reply.status, reply.body) == (409, {"error": "This phone number is already registered"})
        lost = await buyer.post(BASE, json={"phoneNumber": "+14155550102"})  # nobody's: checked and released
        assert lost.status == 502
    finally:
        await client.close()
    assert fake_twilio.released == [] and list(fake_twilio.owned) == [theirs_sid]
    assert await pool.fetchval("SELECT count(*) FROM phone_numbers") == 1
