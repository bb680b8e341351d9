"""Cross-site requests: the `__session` cookie rides along with any request a hostile page makes, so a cookie-
authenticated request that changes state, or opens the progress websocket, must come from an allowed origin
(CLERK_AUTHORIZED_PARTIES or OUTREACH_PUBLIC_URL) and send JSON; a bearer header needs neither."""
from __future__ import annotations

import dataclasses
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from tests.conftest import Api

DASH = "/api/dashboard"
APP_ORIGIN = "https://app.example"
OWN_ORIGIN = "http://127.0.0.1:8080"  # OUTREACH_PUBLIC_URL's default
BAD_ORIGIN = {"error": "Cross-site request refused: its Origin is not an allowed origin"}
NOT_JSON = {"error": "Cross-site request refused: send the body as application/json"}


@pytest.fixture
async def http(settings, pool, redis):
    strict = dataclasses.replace(settings, clerk_authorized_parties=(APP_ORIGIN,))
    client = TestClient(TestServer(build_app(strict, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
def token(clerk) -> str:
    return clerk.mint("user_csrf", azp=APP_ORIGIN)


async def call(http, method: str, path: str, token: str, headers: dict | None = None, **kwargs):
    """A request carrying the session as a cookie, as a browser would."""
    all_headers = {"Cookie": f"__session={token}", **(headers or {})}
    async with http.request(method, DASH + path, headers=all_headers, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def campaign_count(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM campaigns")


async def test_cookie_writes_need_an_allowed_origin(http, token, pool):
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Referer": "https://evil.example/app.example"}, {"Origin": "https://app.example.evil.test"},
                    {"Origin": "http://app.example"}, {"Origin": "http://127.0.0.1:1"}):
        reply = await call(http, "POST", "/campaigns", token, headers, json={"name": "forged"})
        assert reply == (403, BAD_ORIGIN), headers
    assert await campaign_count(pool) == 0
    served_from = str(http.make_url("")).rstrip("/")  # a page this server served (the live page): same origin
    for headers in ({"Origin": APP_ORIGIN}, {"Origin": "HTTPS://APP.example"}, {"Origin": OWN_ORIGIN},
                    {"Referer": f"{APP_ORIGIN}/campaigns?tab=all"}, {"Origin": served_from},
                    {"Referer": f"{served_from}/live"}):
        status, body = await call(http, "POST", "/campaigns", token, headers, json={"name": "mine"})
        assert status == 201, (headers, body)
    assert await campaign_count(pool) == 6


async def test_cookie_writes_must_send_json(http, token, pool):
    origin = {"Origin": APP_ORIGIN}
    forms = [({"Content-Type": "text/plain"}, b'{"name": "forged"}'),
             ({"Content-Type": "application/x-www-form-urlencoded"}, b"name=forged"),
             ({}, aiohttp.FormData({"name": "forged"}))]
    for headers, data in forms:
        assert await call(http, "POST", "/campaigns", token, {**origin, **headers}, data=data) == (403, NOT_JSON)
    multipart = aiohttp.FormData()
    multipart.add_field("file", b"name\nforged\n", filename="x.csv", content_type="text/csv")
    assert await call(http, "POST", "/campaigns", token, origin, data=multipart) == (403, NOT_JSON)
    assert await campaign_count(pool) == 0
    # The lead import takes its CSV as multipart (the dashboard's form): allowed there, from an allowed origin.
    upload = aiohttp.FormData()
    upload.add_field("file", b"email\nivan@example.com\n", filename="leads.csv", content_type="text/csv")
    status, body = await call(http, "POST", "/leads/import", token, origin, data=upload)
    assert status == 200 and body["imported"] == 1


async def test_bodiless_writes_need_the_origin_only(http, token):
    missing = f"/campaigns/{uuid.uuid4()}"
    assert await call(http, "DELETE", missing, token) == (403, BAD_ORIGIN)
    assert (await call(http, "DELETE", missing, token, {"Origin": APP_ORIGIN}))[0] == 404


async def test_reads_and_bearer_requests_are_not_cross_site_checked(http, token, pool):
    assert (await call(http, "GET", "/campaigns", token, {"Origin": "https://evil.example"}))[0] == 200
    bearer = Api(http, token)
    reply = await bearer.post(DASH + "/campaigns", json={"name": "script"}, headers={"Origin": "https://evil.example"})
    assert reply.status == 201
    assert (await bearer.call("POST", DASH + "/campaigns", raw=b'{"name": "plain"}',
                              headers={"Content-Type": "text/plain"})).status == 201


async def test_the_websocket_handshake_checks_the_origin_for_cookie_and_query_tokens(http, token):
    created = await Api(http, token).post(DASH + "/campaigns", json={"name": "watched"})
    feed = f"{DASH}/campaigns/{created.body['id']}/progress"
    refused = [({"Cookie": f"__session={token}", "Origin": "https://evil.example"}, feed),
               ({"Cookie": f"__session={token}"}, feed),
               ({"Origin": "https://evil.example"}, f"{feed}?token={token}")]
    for headers, path in refused:
        with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
            await http.ws_connect(path, headers=headers)
        assert failure.value.status == 403, (headers, path)
    for headers, path in (({"Cookie": f"__session={token}", "Origin": APP_ORIGIN}, feed),
                          ({"Origin": APP_ORIGIN}, f"{feed}?token={token}"),
                          ({"Origin": str(http.make_url("")).rstrip("/")}, f"{feed}?token={token}"),
                          ({"Authorization": f"Bearer {token}"}, feed)):
        socket = await http.ws_connect(path, headers=headers)
        assert (await socket.receive_json())["type"] == "snapshot"
        await socket.close()


async def test_a_query_token_authenticates_the_websocket_route_only(http, token):
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Origin": APP_ORIGIN}
    for headers in ({}, upgrade):
        async with http.get(f"{DASH}/campaigns?token={token}", headers=headers) as response:
            assert (response.status, await response.json()) == (401, {"error": "Unauthorized"})
    created = await Api(http, token).post(DASH + "/campaigns", json={"name": "watched"})
    async with http.get(f"{DASH}/campaigns/{created.body['id']}/progress?token={token}") as response:
        assert response.status == 401  # a plain GET of the feed is no handshake: the token is not read
