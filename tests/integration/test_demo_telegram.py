"""POST /api/demo/telegram, the landing page's public demo: the contract's validation, normalising and errors;
sent from the sandbox when sandboxed, or by the configured account through its actor on a real local Ray, whose
daily limit applies."""
from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach import service
from outreach.actors import remote
from outreach.http.app import Deps, build_app
from outreach.providers.sandbox import SandboxOutcomes
from tests.conftest import TEST_RUNNER_OPTIONS
from tests.factories import insert_telegram_account

DEMO = "/api/demo/telegram"
INVALID = {"error": "Invalid username"}


def usernames(outcome: str, count: int) -> list[str]:
    """Usernames the sandbox (its default mix and seed) answers with `outcome`: its outcome is a function of them."""
    outcomes = SandboxOutcomes("telegram")
    return [name for name in (f"visitor_{index}" for index in range(500))
            if outcome_for(outcomes, name) == outcome][:count]


def outcome_for(outcomes: SandboxOutcomes, name: str) -> str:
    digest = hashlib.blake2b(f"{outcomes.seed}:telegram:{name}".encode(), digest_size=8).digest()
    return random.Random(digest).choices(outcomes.outcomes, outcomes.weights)[0]


async def client_for(settings, pool, redis, runtime=None) -> TestClient:
    deps = Deps(pool=pool, redis=redis, runtime=runtime, demo_telegram=service.build_demo_telegram(settings, runtime))
    client = TestClient(TestServer(build_app(settings, deps), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def sandboxed(settings, pool, redis):
    client = await client_for(dataclasses.replace(settings, sandbox=True), pool, redis)
    yield client
    await client.close()


async def post(client: TestClient, body) -> tuple[int, dict]:
    async with client.post(DEMO, json=body) as response:  # public: no Authorization header
        return response.status, await response.json()


async def test_a_sandboxed_demo_message_is_sent_once_per_username_an_hour(sandboxed):
    name = usernames("sent", 1)[0]
    assert await post(sandboxed, {"username": f"  @{name.upper()} "}) == (200, {"success": True})
    status, body = await post(sandboxed, {"username": name})  # the same username, normalised
    assert status == 429 and "rate" in body["error"]


async def test_the_contracts_validation(sandboxed):
    for body in ({}, {"username": ""}, {"username": "@"}, {"username": "a"}, {"username": 5}, {"username": None},
                 {"username": "no spaces allowed"}, {"username": "x" * 40}, {"username": ["alice"]}):
        assert await post(sandboxed, body) == (400, INVALID), body
    async with sandboxed.post(DEMO, data=b"{not json", headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400


async def test_a_failed_send_is_a_502_and_can_be_tried_again(sandboxed):
    name = usernames("privacy_restricted", 1)[0]
    for _ in range(2):  # the claim is given back: not a 429 the second time
        status, body = await post(sandboxed, {"username": name})
        assert status == 502 and body == {"error": "Failed to send: The user's privacy settings forbid messages"}


async def test_without_an_account_or_the_sandbox_it_is_a_503_naming_the_setting(settings, pool, redis):
    client = await client_for(settings, pool, redis)
    try:
        status, body = await post(client, {"username": "someone_real"})
        assert status == 503 and "OUTREACH_DEMO_TELEGRAM_ACCOUNT" in body["error"]
    finally:
        await client.close()


async def test_the_configured_account_sends_through_its_actor_within_its_daily_limit(ray_cluster, ray_settings,
                                                                                      pool, redis, make_tenant):
    owner = await make_tenant("demo-owner")
    account = await insert_telegram_account(pool, owner.org_id, session="sandbox", status="active",
                                            max_daily_messages=1)
    settings = dataclasses.replace(ray_settings, demo_telegram_account=str(account["id"]))
    client = await client_for(settings, pool, redis, remote.RayRuntime(settings, TEST_RUNNER_OPTIONS))
    try:
        first, second = usernames("sent", 2)
        assert await post(client, {"username": first}) == (200, {"success": True})
        status, body = await post(client, {"username": second})  # the account's day is used up
        assert status == 429 and "rate" in body["error"] and "daily limit" in body["error"]
        assert await pool.fetchval("SELECT daily_message_count FROM telegram_accounts WHERE id = $1",
                                   account["id"]) == 1
        assert (await post(client, {"username": second}))[0] == 429  # still waiting, and not sent
    finally:
        await client.close()
