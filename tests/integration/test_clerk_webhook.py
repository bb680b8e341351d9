"""Clerk's webhook (Svix-signed): a member removed from an organization takes the API keys they made there."""
from __future__ import annotations

import base64
import dataclasses
import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http import svix
from outreach.http.app import Deps, build_app
from tests.conftest import Api

HOOK = "/api/webhook/clerk"
KEYS = "/api/dashboard/settings/api-keys"
SIGNING_KEY = b"clerk-signing-key-for-tests-0123"
SECRET = "whsec_" + base64.b64encode(SIGNING_KEY).decode()


@pytest.fixture
async def http(settings, pool, redis):
    app = build_app(dataclasses.replace(settings, clerk_webhook_secret=SECRET), Deps(pool=pool, redis=redis))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


def membership_deleted(org: str, user: str) -> dict:
    return {"type": "organizationMembership.deleted", "object": "event", "data": {
        "object": "organization_membership", "role": "org:admin",
        "organization": {"id": org, "object": "organization", "slug": org},
        "public_user_data": {"user_id": user, "identifier": f"{user}@acme.test"}}}


def signed(body: bytes, event_id: str, key: bytes = SIGNING_KEY, stamp: int | None = None) -> dict:
    stamp = str(int(time.time()) if stamp is None else stamp)
    return {"svix-id": event_id, "svix-timestamp": stamp, "svix-signature": f"v1,{svix.sign(key, event_id, stamp, body)}",
            "Content-Type": "application/json"}


async def deliver(http, event: dict, event_id: str = "msg_1", **signing) -> tuple[int, dict]:
    body = json.dumps(event).encode()
    async with http.post(HOOK, data=body, headers=signed(body, event_id, **signing)) as response:
        return response.status, await response.json()


async def make_key(http, clerk, user: str, org: str) -> Api:
    admin = Api(http, clerk.mint(user, v=2, o={"id": org, "rol": "admin"}))
    created = await admin.post(KEYS, json={"name": f"{user} key"})
    assert created.status == 201, created.body
    return Api(http, created.body["key"])


async def works(key: Api) -> bool:
    return (await key.get(KEYS)).status == 200


async def test_a_removed_member_loses_the_keys_they_made_in_that_org(http, clerk, pool):
    leaving = [await make_key(http, clerk, "user_leaving", "org_team") for _ in range(2)]
    made_by_key = Api(http, (await leaving[0].post(KEYS, json={"name": "made with a key"})).body["key"])
    staying = await make_key(http, clerk, "user_staying", "org_team")
    elsewhere = await make_key(http, clerk, "user_leaving", "org_other")
    status, body = await deliver(http, membership_deleted("org_team", "user_leaving"))
    assert (status, body) == (200, {"received": True, "type": "organizationMembership.deleted", "revoked": 3})
    for key in (*leaving, made_by_key):
        assert not await works(key)
    assert await works(staying) and await works(elsewhere)
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 2
    again = await deliver(http, membership_deleted("org_team", "user_leaving"))
    assert again == (200, {"received": True, "type": "organizationMembership.deleted", "duplicate": True})


async def test_other_events_are_acknowledged_and_change_nothing(http, clerk, pool):
    key = await make_key(http, clerk, "user_a", "org_team")
    reply = await deliver(http, {"type": "user.updated", "data": {"id": "user_a"}})
    assert reply == (200, {"received": True, "type": "user.updated", "revoked": 0})
    assert await works(key)


async def test_unsigned_forged_stale_or_malformed_deliveries_are_refused(http, clerk, pool):
    key = await make_key(http, clerk, "user_a", "org_team")
    event = membership_deleted("org_team", "user_a")
    body = json.dumps(event).encode()
    async with http.post(HOOK, data=body, headers={"Content-Type": "application/json"}) as response:
        assert (response.status, await response.json()) == (400, {"error": "Missing signature"})
    for signing in ({"key": b"not-the-key"}, {"stamp": int(time.time()) - 301}, {"stamp": int(time.time()) + 301}):
        assert await deliver(http, event, **signing) == (400, {"error": "Invalid signature"}), signing
    assert await deliver(http, {"data": {}}) == (400, {"error": "Event must be a JSON object with a type"})
    incomplete = {"type": "organizationMembership.deleted", "data": {"organization": {"id": "org_team"}}}
    assert await deliver(http, incomplete, "msg_2") == (
        400, {"error": "Membership event must name organization.id and public_user_data.user_id"})
    assert await works(key)
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0


async def test_refused_without_a_secret(settings, pool, redis, clerk):
    app = build_app(settings, Deps(pool=pool, redis=redis))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        status, body = await deliver(client, membership_deleted("org_team", "user_a"))
    assert (status, body) == (503, {"error": "Clerk webhook is not configured: set CLERK_WEBHOOK_SECRET"})
