"""POST /email/test when the session token carries no `email` claim (Clerk's default token): the address comes from
Clerk's Backend API (CLERK_SECRET_KEY), through the real adapter pointed at the local Clerk fake."""
from __future__ import annotations

import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.clerk import ClerkUsers
from outreach.providers.resend import ResendEmail
from tests.conftest import Api
from tests.factories import prove_sender

TEST = "/api/dashboard/email/test"


@pytest.fixture
async def app_with(settings, pool, redis, resend):
    """Factory: the app with Resend and, unless told otherwise, Clerk's Backend API."""
    email = ResendEmail(resend.api_key, resend.url(), rate_per_second=1000, timeout=2)
    clients = []

    async def make(clerk_users) -> TestClient:
        app = build_app(settings, Deps(pool=pool, redis=redis, email=email, clerk_users=clerk_users))
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
    await email.close()


async def signed_in_with_sender(client, clerk, pool, user_id: str) -> Api:
    me = Api(client, clerk.mint(user_id))  # no email claim, as Clerk's default session token
    saved = await me.put("/api/dashboard/channels", json={"channel": "email", "config": {"fromEmail": "sales@acme.test"}})
    assert saved.status == 200, saved.body
    await pool.execute("UPDATE organizations SET plan = 'starter'")  # a test email is counted against the plan
    await prove_sender(pool, "sales@acme.test")
    return me


async def test_the_address_is_looked_up_at_clerk_when_the_token_has_none(app_with, clerk, pool, resend):
    user_id = f"user_{uuid.uuid4().hex[:10]}"
    clerk.add_user(user_id, "old@acme.test", "me@acme.test", primary=1)
    client = await app_with(ClerkUsers(clerk.secret_key, clerk.api_url))
    me = await signed_in_with_sender(client, clerk, pool, user_id)
    reply = await me.post(TEST)
    assert (reply.status, reply.body) == (200, {"success": True, "to": "me@acme.test"})
    assert [sent["to"] for sent in resend.sent] == [["me@acme.test"]]
    assert clerk.user_lookups.count(user_id) == 1


async def test_a_token_with_an_email_claim_is_not_looked_up(app_with, clerk, pool, resend):
    client = await app_with(ClerkUsers(clerk.secret_key, clerk.api_url))
    user_id = f"user_{uuid.uuid4().hex[:10]}"
    me = Api(client, clerk.mint(user_id, email="claim@acme.test"))
    await me.put("/api/dashboard/channels", json={"channel": "email", "config": {"fromEmail": "sales@acme.test"}})
    await pool.execute("UPDATE organizations SET plan = 'starter'")
    await prove_sender(pool, "sales@acme.test")
    assert (await me.post(TEST)).body == {"success": True, "to": "claim@acme.test"}
    assert user_id not in clerk.user_lookups


async def test_no_address_anywhere_is_the_contracts_400(app_with, clerk, pool, resend, api):
    unknown = f"user_{uuid.uuid4().hex[:10]}"
    client = await app_with(ClerkUsers(clerk.secret_key, clerk.api_url))
    me = await signed_in_with_sender(client, clerk, pool, unknown)  # Clerk has no such user
    no_address = {"error": "No email address found on your account"}
    reply = await me.post(TEST)
    assert (reply.status, reply.body) == (400, no_address)
    clerk.add_user(unknown)  # a user without any address
    assert (await me.post(TEST)).body == no_address
    assert (await Api(client, api.token).post(TEST)).body == no_address  # an API key has no user to look up
    without_clerk = await app_with(None)
    assert (await Api(without_clerk, me.token).post(TEST)).body == no_address
    assert resend.sent == []


async def test_clerk_refusing_the_secret_key_is_a_502(app_with, clerk, pool, resend):
    user_id = f"user_{uuid.uuid4().hex[:10]}"
    clerk.add_user(user_id, "me@acme.test")
    client = await app_with(ClerkUsers("sk_test_wrong", clerk.api_url))
    me = await signed_in_with_sender(client, clerk, pool, user_id)
    reply = await me.post(TEST)
    assert (reply.status, reply.body) == (502, {"error": "Clerk answered 401"})
    assert resend.sent == []
