"""Numbers on Twilio: search, buy, release, through the real SDK against a local fake of Twilio's wire format."""
from __future__ import annotations

import dataclasses
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.storage import numbers
from tests.conftest import Api, tenant_on
from tests.factories import insert_call, insert_number
from tests.fakes.twilio import twilio_port

BASE = "/api/dashboard/numbers"
PUBLIC_URL = "https://outreach.example.com"
NOT_CONFIGURED = {"error": "Twilio is not configured. Please add TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."}
ROW_KEYS = {"id", "orgId", "number", "label", "provider", "status", "campaignId", "releaseAfter", "createdAt"}



@pytest.fixture
async def twilio_http(settings, pool, redis, fake_twilio):
    settings = dataclasses.replace(settings, twilio_account_sid=fake_twilio.account_sid,
                                   twilio_auth_token=fake_twilio.auth_token, twilio_base_url=fake_twilio.url(),
                                   public_url=PUBLIC_URL)
    app = build_app(settings, Deps(pool=pool, redis=redis, twilio=twilio_port(fake_twilio)))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
def tenant(twilio_http, pool):
    async def make(name: str, plan: str = "starter") -> Api:
        return await tenant_on(twilio_http, pool, name, plan=plan)

    return make


async def test_available_numbers_in_the_contract_shape(tenant, fake_twilio):
    api = await tenant("acme")
    reply = await api.get(f"{BASE}/available?country=us&areaCode=415")
    assert reply.status == 200, reply.body
    assert reply.body == {"numbers": [
        {"phoneNumber": "+14155550101", "friendlyName": "(415) 555-0101", "locality": "San Francisco",
         "region": "CA", "capabilities": {"voice": True, "sms": True, "mms": True}},
        {"phoneNumber": "+14155550102", "friendlyName": "(415) 555-0102", "locality": "San Francisco",
         "region": "CA", "capabilities": {"voice": True, "sms": False, "mms": False}},
    ]}
    search = fake_twilio.searches[-1]
    assert (search["country"], search["AreaCode"], search["VoiceEnabled"], search["PageSize"]) == (
        "US", "415", "true", "20")
    reply = await api.get(f"{BASE}/available")  # US by default, every area
    assert [item["phoneNumber"] for item in reply.body["numbers"]][-1] == "+12125550103"
    assert "AreaCode" not in fake_twilio.searches[-1]
    reply = await api.get(f"{BASE}/available?country=GB")
    assert reply.body["numbers"][0]["region"] is None


async def test_available_refuses_bad_input_before_asking_twilio(tenant, fake_twilio):
    api = await tenant("acme")
    for query, message in [("country=USA", "country must be a two-letter ISO country code, like US"),
                           ("country=1", "country must be a two-letter ISO country code, like US"),
                           ("country=U%20", "country must be a two-letter ISO country code, like US"),
                           ("areaCode=41a", "areaCode must be digits, like 415"),
                           ("areaCode=-415", "areaCode must be digits, like 415"),
                           ("areaCode=1234567", "areaCode must be digits, like 415")]:
        reply = await api.get(f"{BASE}/available?{query}")
        assert (reply.status, reply.body) == (400, {"error": message}), query
    assert fake_twilio.searches == []


async def test_available_maps_twilio_errors(tenant, fake_twilio):
    api = await tenant("acme")
    reply = await api.get(f"{BASE}/available?country=ZZ")  # Twilio: 404, no such country: the user can fix it
    assert reply.status == 400
    assert set(reply.body) == {"error"}
    assert reply.body["error"].startswith("Twilio search failed: The requested resource")
    fake_twilio.fail_next("search", 503, 20503, "Service temporarily unavailable")
    reply = await api.get(f"{BASE}/available")
    assert (reply.status, reply.body) == (502, {"error": "Twilio search failed: Service temporarily unavailable"})
    fake_twilio.fail_next("search", 401, 20003, "Authenticate")  # our credentials: not the user's doing
    reply = await api.get(f"{BASE}/available")
    assert (reply.status, reply.body) == (502, {"error": "Twilio search failed: Authenticate"})


async def test_not_configured_is_a_503_the_numbers_page_recognizes(api, pool):
    number = await insert_number(pool, api.org_id, provider_sid="PN1")
    for method, path, body in [("GET", f"{BASE}/available", None), ("POST", BASE, {"phoneNumber": "+14155550101"}),
                               ("DELETE", f"{BASE}/{number['id']}", None)]:
        reply = await api.call(method, path, json=body)
        assert (reply.status, reply.body) == (503, NOT_CONFIGURED), (method, path)
    assert (await api.get(f"{BASE}/{number['id']}")).status == 200  # not deleted: it may still be paid for


async def test_buy_points_the_number_at_our_webhooks_and_stores_it(tenant, fake_twilio, pool):
    api = await tenant("acme")
    reply = await api.post(BASE, json={"phoneNumber": "+14155550101", "label": " Sales "})
    assert reply.status == 201, reply.body
    assert set(reply.body) == ROW_KEYS
    assert (reply.body["number"], reply.body["label"], reply.body["provider"], reply.body["status"],
            reply.body["orgId"], reply.body["campaignId"]) == (
        "+14155550101", "Sales", "twilio", "active", str(api.org_id), None)
    [(sid, bought)] = fake_twilio.owned.items()
    for field, path in (("voice_url", "/api/webhook/twilio/voice"), ("status_callback", "/api/webhook/twilio/status")):
        url = urlsplit(bought[field])
        assert f"{url.scheme}://{url.netloc}{url.path}" == PUBLIC_URL + path
        assert parse_qs(url.query) == {"orgId": [str(api.org_id)]}
    assert (bought["voice_method"], bought["status_callback_method"]) == ("POST", "POST")
    assert await pool.fetchval("SELECT provider_sid FROM phone_numbers WHERE id = $1",
                               uuid.UUID(reply.body["id"])) == sid
    assert [row["id"] for row in (await api.get(BASE)).body["numbers"]] == [reply.body["id"]]


async def test_buy_refuses_bad_input_and_buys_nothing(tenant, fake_twilio, pool):
    api = await tenant("acme")
    cases = [
        ({}, "Missing required field: phoneNumber"),
        ({"phoneNumber": ""}, "Missing required field: phoneNumber"),
        ({"phoneNumber": None}, "Missing required field: phoneNumber"),
        ({"phoneNumber": "4155550101"}, "phoneNumber must be in E.164 format, like +14155551234"),
        ({"phoneNumber": "+0155550101"}, "phoneNumber must be in E.164 format, like +14155551234"),
        ({"phoneNumber": "+1 415 555 0101"}, "phoneNumber must be in E.164 format, like +14155551234"),
        ({"phoneNumber": 14155550101}, "phoneNumber must be in E.164 format, like +14155551234"),
        ({"phoneNumber": "+1415555010199999"}, "phoneNumber must be in E.164 format, like +14155551234"),
        ({"phoneNumber": "+14155550101", "label": 5}, "label must be a string"),
    ]
    for body, message in cases:
        reply = await api.post(BASE, json=body)
        assert (reply.status, reply.body) == (400, {"error": message}), body
    reply = await api.post(BASE, raw=b"{nope", headers={"Content-Type": "application/json"})
    assert (reply.status, reply.body) == (400, {"error": "Invalid JSON body"})
    assert fake_twilio.owned == {} and await pool.fetchval("SELECT count(*) FROM phone_numbers") == 0


async def test_buy_a_number_twilio_no_longer_sells_is_a_400_with_twilios_message(tenant, fake_twilio, pool):
    api = await tenant("acme")
    reply = await api.post(BASE, json={"phoneNumber": "+14155559999"})
    assert reply.status == 400
    assert reply.body == {"error": "Twilio purchase failed: PhoneNumber requested is not available"}
    fake_twilio.fail_next("buy", 500, 20500, "An internal server error has occurred")
    reply = await api.post(BASE, json={"phoneNumber": "+14155550101"})
    assert reply.status == 502
    assert reply.body == {"error": "Twilio purchase failed: An internal server error has occurred"}
    assert await pool.fetchval("SELECT count(*) FROM phone_numbers") == 0


async def test_a_plan_without_minutes_cannot_buy(tenant, fake_twilio):
    api = await tenant("freeloader", plan="free")
    reply = await api.post(BASE, json={"phoneNumber": "+14155550101"})
    assert reply.status == 429 and reply.body["error"].startswith("Voice minutes limit reached (0/0) on the free plan")
    assert fake_twilio.owned == {}


async def test_a_number_another_org_holds_is_neither_bought_nor_released(tenant, fake_twilio, pool):
    """Another organization already has the number in our database: refused before Twilio is asked."""
    api, other = await tenant("acme"), await tenant("globex")
    sid = fake_twilio.own("+14155550101")
    await insert_number(pool, other.org_id, number="+14155550101", provider_sid=sid)
    reply = await api.post(BASE, json={"phoneNumber": "+14155550101"})
    assert (reply.status, reply.body) == (409, {"error": "This phone number is already registered"})
    assert list(fake_twilio.owned) == [sid] and fake_twilio.released == []
    assert await pool.fetchval("SELECT count(*) FROM phone_numbers WHERE org_id = $1", api.org_id) == 0


async def test_any_storage_failure_after_purchase_releases_the_number(tenant, fake_twilio, pool, monkeypatch):
    api = await tenant("acme")

    async def broken_update(conn, org_id, number_id, number, provider_sid):
        raise ConnectionResetError("database went away")

    monkeypatch.setattr(numbers, "activate_number", broken_update)
    reply = await api.post(BASE, json={"phoneNumber": "+14155550102"})
    assert (reply.status, reply.body) == (500, {"error": "Internal server error"})
    assert fake_twilio.owned == {} and len(fake_twilio.released) == 1
    assert await pool.fetchval("SELECT count(*) FROM phone_numbers") == 0


async def test_delete_releases_at_twilio_then_deletes_and_keeps_call_logs(tenant, fake_twilio, pool):
    api = await tenant("acme")
    bought = (await api.post(BASE, json={"phoneNumber": "+14155550101"})).body
    [sid] = fake_twilio.owned
    call = await insert_call(pool, api.org_id, phone_number_id=uuid.UUID(bought["id"]), duration=60)
    reply = await api.delete(f"{BASE}/{bought['id']}")
    assert (reply.status, reply.body) == (200, {"success": True})
    assert fake_twilio.released == [sid] and fake_twilio.owned == {}
    assert (await api.get(f"{BASE}/{bought['id']}")).status == 404
    assert await pool.fetchval("SELECT phone_number_id FROM call_logs WHERE id = $1", call["id"]) is None
    assert (await api.delete(f"{BASE}/{bought['id']}")).status == 404


async def test_delete_keeps_the_row_when_twilio_cannot_release(tenant, fake_twilio):
    api = await tenant("acme")
    bought = (await api.post(BASE, json={"phoneNumber": "+14155550101"})).body
    fake_twilio.fail_next("release", 500, 20500, "An internal server error has occurred")
    reply = await api.delete(f"{BASE}/{bought['id']}")
    assert reply.status == 502
    assert reply.body == {"error": "Twilio release failed: An internal server error has occurred"}
    assert (await api.get(f"{BASE}/{bought['id']}")).status == 200
    assert (await api.delete(f"{BASE}/{bought['id']}")).status == 200  # the retry releases and deletes


async def test_delete_a_number_twilio_already_released_or_stored_without_sid(tenant, fake_twilio, pool):
    api = await tenant("acme")
    gone = await insert_number(pool, api.org_id, provider_sid="PN" + "0" * 32)  # released in Twilio's console
    assert (await api.delete(f"{BASE}/{gone['id']}")).status == 200
    sid = fake_twilio.own("+15105550100")
    legacy = await insert_number(pool, api.org_id, number="+15105550100")  # no sid: looked up by value
    assert (await api.delete(f"{BASE}/{legacy['id']}")).status == 200
    assert fake_twilio.released == [sid]
    other_provider = await insert_number(pool, api.org_id, provider="sandbox")
    fake_twilio.fail_next("release", 500, 20500, "must not be called")
    assert (await api.delete(f"{BASE}/{other_provider['id']}")).status == 200
    assert await pool.fetchval("SELECT count(*) FROM phone_numbers") == 0


async def test_delete_another_orgs_number_is_not_found_and_releases_nothing(tenant, fake_twilio):
    api, other = await tenant("acme"), await tenant("globex")
    theirs = (await other.post(BASE, json={"phoneNumber": "+14155550101"})).body
    for target in (theirs["id"], str(uuid.uuid4()), "not-a-uuid"):
        reply = await api.delete(f"{BASE}/{target}")
        assert (reply.status, reply.body) == (404, {"error": "Not found"})
    assert fake_twilio.released == [] and (await other.get(f"{BASE}/{theirs['id']}")).status == 200


async def test_a_purchase_whose_answer_is_lost_is_released_if_twilio_sold_it(settings, pool, redis, make_tenant):
    from aiohttp.test_utils import TestClient, TestServer

    from outreach.http.app import Deps, build_app
    from outreach.runtime import errors
    from tests.conftest import Api

    class LostAnswerTwilio:
        released: list[str] = []

        async def buy_number(self, phone_number, voice_url, status_callback):
            raise errors.ProviderError("Twilio request failed: timeout", status=None)  # it was bought meanwhile

        async def find_number(self, phone_number):
            return "PN" + "1" * 32

        async def release_number(self, sid):
            self.released.append(sid)
            return True

    port = LostAnswerTwilio()
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, twilio=port)), host="127.0.0.1"))
    await client.start_server()
    try:
        tenant = await make_tenant("buyer")
        await pool.execute("UPDATE organizations SET plan = 'starter' WHERE id = $1", tenant.org_id)
        reply = await Api(client, tenant.token, tenant.org_id).post("/api/dashboard/numbers",
                                                                    json={"phoneNumber": "+14155550123"})
    finally:
        await client.close()
    assert reply.status == 502
    assert port.released == ["PN" + "1" * 32]
    assert await pool.fetchval("SELECT count(*) FROM phone_numbers") == 0
