"""Clerk session tokens and API keys, against a local JWKS server."""
from __future__ import annotations

import asyncio
import dataclasses
import logging

from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from outreach.http.app import Deps, build_app
from tests.conftest import Api

CAMPAIGNS = "/api/dashboard/campaigns"


async def status_with(http, headers=None, cookies=None) -> tuple[int, object]:
    async with http.get(CAMPAIGNS, headers=headers or {}, cookies=cookies or {}) as response:
        return response.status, await response.json(content_type=None)


async def test_no_token_bad_token_and_unknown_key_are_401_json(http, clerk):
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer tp_live_" + "0" * 64}):
        assert await status_with(http, headers) == (401, {"error": "Unauthorized"})


async def test_session_token_from_header_or_cookie(http, clerk):
    token = clerk.mint("user_1")
    assert (await status_with(http, {"Authorization": f"Bearer {token}"}))[0] == 200
    assert (await status_with(http, cookies={"__session": token}))[0] == 200


async def test_expired_not_yet_valid_and_forged_tokens_are_refused(http, clerk):
    expired = clerk.mint("user_1", lifetime=-60)
    future = clerk.mint("user_1", nbf=10**10)
    forged = clerk.mint("user_1", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    for token in (expired, future, forged):
        assert (await status_with(http, {"Authorization": f"Bearer {token}"}))[0] == 401


async def test_small_clock_skew_is_tolerated(http, clerk):
    token = clerk.mint("user_1", lifetime=-2)
    assert (await status_with(http, {"Authorization": f"Bearer {token}"}))[0] == 200


async def test_unknown_kid_refetches_the_jwks_once(http, clerk):
    clerk.add_key("key-rotated")
    token = clerk.mint("user_1", kid="key-rotated")
    before = clerk.fetches
    assert (await status_with(http, {"Authorization": f"Bearer {token}"}))[0] == 200
    assert (await status_with(http, {"Authorization": f"Bearer {token}"}))[0] == 200
    assert clerk.fetches - before <= 1
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown = clerk.mint("user_1", kid="key-nobody-has", key=stranger)
    assert (await status_with(http, {"Authorization": f"Bearer {unknown}"}))[0] == 401
    assert clerk.fetches - before <= 2


async def test_issuer_and_authorized_parties_are_checked(settings, pool, redis, clerk):
    strict = dataclasses.replace(settings, clerk_issuer="https://clerk.example",
                                 clerk_authorized_parties=("https://app.example",))
    client = TestClient(TestServer(build_app(strict, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    try:
        good = clerk.mint("user_1", iss="https://clerk.example", azp="https://app.example")
        wrong_iss = clerk.mint("user_1", iss="https://evil.example", azp="https://app.example")
        wrong_azp = clerk.mint("user_1", iss="https://clerk.example", azp="https://evil.example")
        assert (await status_with(client, {"Authorization": f"Bearer {good}"}))[0] == 200
        assert (await status_with(client, {"Authorization": f"Bearer {wrong_iss}"}))[0] == 401
        assert (await status_with(client, {"Authorization": f"Bearer {wrong_azp}"}))[0] == 401
    finally:
        await client.close()


async def test_v1_and_v2_organization_claims_share_one_org(http, clerk):
    v2 = Api(http, clerk.mint("user_1", v=2, o={"id": "org_abc", "rol": "admin", "slg": "acme"}))
    v1 = Api(http, clerk.mint("user_2", org_id="org_abc", org_role="org:admin"))
    created = await v2.post(CAMPAIGNS, json={"name": "shared"})
    assert created.status == 201
    listed = await v1.get(CAMPAIGNS)
    assert [row["id"] for row in listed.body["campaigns"]] == [created.body["id"]]


async def test_users_without_organization_get_separate_personal_orgs(http, clerk):
    alice = Api(http, clerk.mint("user_alice"))
    bob = Api(http, clerk.mint("user_bob"))
    await alice.post(CAMPAIGNS, json={"name": "mine"})
    assert (await bob.get(CAMPAIGNS)).body["campaigns"] == []
    assert len((await alice.get(CAMPAIGNS)).body["campaigns"]) == 1


async def test_concurrent_first_requests_create_one_personal_org(settings, pool, redis, clerk):
    token = clerk.mint("user_race")
    clients = []
    for _ in range(4):  # separate apps, so no in-process cache hides the race
        client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
    try:
        replies = await asyncio.gather(*(status_with(c, {"Authorization": f"Bearer {token}"}) for c in clients))
        assert all(status == 200 for status, _ in replies)
    finally:
        for client in clients:
            await client.close()
    count = await pool.fetchval("SELECT count(*) FROM organizations WHERE owner_id = 'user_race'")
    assert count == 1


async def test_api_key_is_accepted_and_marks_last_use(api, pool):
    assert (await api.get(CAMPAIGNS)).status == 200
    used = await pool.fetchval("SELECT last_used_at FROM api_keys WHERE org_id = $1", api.org_id)
    assert used is not None


async def test_public_routes_need_no_auth(http):
    async with http.get("/healthz") as response:
        assert response.status == 200
    async with http.get("/readyz") as response:
        assert response.status == 200
        assert (await response.json())["checks"] == {"postgres": "ok", "redis": "ok"}


async def test_unknown_route_and_method_answer_json(http, api):
    async with http.get("/nowhere") as response:
        assert response.status == 404 and await response.json() == {"error": "Not found"}
    reply = await api.call("PUT", CAMPAIGNS)
    assert reply.status == 405 and reply.body == {"error": "Method not allowed"}


async def test_demo_status_is_public_and_says_sandbox(http, settings, pool, redis):
    async with http.get("/api/demo/status") as response:
        assert await response.json() == {"call": False, "telegram": False, "email": False, "sandbox": False}
    sandboxed = dataclasses.replace(settings, sandbox=True)
    client = TestClient(TestServer(build_app(sandboxed, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    try:
        async with client.get("/api/demo/status") as response:
            assert await response.json() == {"call": True, "telegram": True, "email": True, "sandbox": True}
    finally:
        await client.close()


async def test_the_home_redirect_is_logged_and_counted_with_the_status_sent(http, caplog):
    caplog.set_level(logging.INFO, logger="outreach.access")
    async with http.get("/", allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"] == "/live"
    async with http.get("/metrics") as response:
        text = await response.text()
    assert 'outreach_http_requests_total{method="GET",route="/",status="302"} 1.0' in text
    assert 'route="/",status="500"' not in text
    logged = [record for record in caplog.records if record.name == "outreach.access" and record.route == "/"]
    assert [(record.method, record.status) for record in logged] == [("GET", 302)]


async def test_azp_is_checked_whenever_authorized_parties_are_set(settings, pool, redis, clerk):
    strict = dataclasses.replace(settings, clerk_authorized_parties=("https://app.example", "https://admin.example"))
    client = TestClient(TestServer(build_app(strict, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    try:
        for azp, status in (("https://admin.example", 200), (None, 401), ("", 401), (["https://app.example"], 401)):
            claims = {} if azp is None else {"azp": azp}
            token = clerk.mint("user_1", **claims)
            assert (await status_with(client, {"Authorization": f"Bearer {token}"}))[0] == status, azp
            assert (await status_with(client, cookies={"__session": token}))[0] == status, azp
    finally:
        await client.close()
