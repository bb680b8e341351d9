"""LiqPay: checkout data for a UAH subscription and the server callback, over HTTP and PostgreSQL."""
from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import json
import time

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.liqpay import LiqPay
from tests.conftest import Api, tenant_on

CHECKOUT = "/api/dashboard/billing/liqpay"
HOOK = "/api/webhook/liqpay"
PUBLIC = "https://app.outreach.test"
PUBLIC_KEY, PRIVATE_KEY = "i000000001", "private-test-key"
RECEIVED = {"received": True}


def sign(data: str, private_key: str = PRIVATE_KEY) -> str:
    return base64.b64encode(hashlib.sha1((private_key + data + private_key).encode()).digest()).decode()


def encode(payload: dict) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def decode(data: str) -> dict:
    return json.loads(base64.b64decode(data))


@pytest.fixture
def liqpay_settings(settings):
    return dataclasses.replace(settings, liqpay_public_key=PUBLIC_KEY, liqpay_private_key=PRIVATE_KEY,
                               public_url=PUBLIC)


@pytest.fixture
async def start_app(pool, redis):
    clients = []

    async def start(settings, port) -> TestClient:
        client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, liqpay=port)),
                                       host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def liqpay_http(start_app, liqpay_settings) -> TestClient:
    return await start_app(liqpay_settings, LiqPay(PUBLIC_KEY, PRIVATE_KEY))


@pytest.fixture
def payer(liqpay_http, pool):
    async def make(name: str) -> Api:
        return await tenant_on(liqpay_http, pool, name)

    return make


async def plan_of(pool, org_id) -> str:
    return await pool.fetchval("SELECT plan::text FROM organizations WHERE id = $1", org_id)


def callback(order_id: str, status: str, amount=1650, currency: str = "UAH", payment_id: int | None = 1001,
             **extra) -> dict:
    payload = {"action": "subscribe", "status": status, "order_id": order_id, "amount": amount,
               "currency": currency, "public_key": PUBLIC_KEY, "version": 3, "end_date": int(time.time() * 1000),
               **extra}
    if payment_id is not None:
        payload["payment_id"] = payment_id
    return payload


async def post_callback(client: TestClient, payload: dict | None = None, *, data: str | None = None,
                        signature: str | None = None, multipart: bool = False):
    data = data if data is not None else encode(payload)
    fields = {"data": data, "signature": signature if signature is not None else sign(data)}
    if multipart:
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value, content_type="text/plain")
        body = form
    else:
        body = fields
    async with client.post(HOOK, data=body) as response:
        return response.status, await response.json()


async def checkout(api: Api, plan: str) -> dict:
    reply = await api.post(CHECKOUT, json={"planId": plan}, headers={"Origin": "https://evil.example"})
    assert reply.status == 200, reply.body
    return reply.body


async def test_checkout_data_is_a_signed_uah_subscription_for_the_org(payer):
    api = await payer("acme")
    body = await checkout(api, "growth")
    assert set(body) == {"data", "signature", "orderId"}
    assert body["signature"] == sign(body["data"])
    params = decode(body["data"])
    assert params["order_id"] == body["orderId"]
    assert body["orderId"].startswith(f"liqpay_{api.org_id.hex}_growth_")
    assert {key: params[key] for key in ("public_key", "version", "action", "amount", "currency",
                                         "subscribe_periodicity")} == {
        "public_key": PUBLIC_KEY, "version": 3, "action": "subscribe", "amount": 4100, "currency": "UAH",
        "subscribe_periodicity": "month"}
    assert params["server_url"] == PUBLIC + "/api/webhook/liqpay"
    # The billing page shows its banner for success=true, as after Stripe; the plan waits for the signed callback.
    assert params["result_url"] == PUBLIC + "/dashboard/billing?success=true&provider=liqpay"
    assert params["subscribe_date_start"].endswith(" 00:00:00")
    assert {decode((await checkout(api, plan))["data"])["amount"] for plan in ("starter", "enterprise")} == {
        1650, 12300}


async def test_checkout_for_a_clerk_user_names_the_org_not_the_user(liqpay_http, clerk, pool):
    user = Api(liqpay_http, clerk.mint("user_liqpay_1", o={"id": "org_clerk_1", "rol": "admin", "slg": "team"}))
    body = await checkout(user, "starter")
    org_id = await pool.fetchval("SELECT id FROM organizations WHERE clerk_org_id = 'org_clerk_1'")
    assert body["orderId"].startswith(f"liqpay_{org_id.hex}_starter_") and "user_liqpay_1" not in body["orderId"]


async def test_checkout_amounts_come_from_configuration(start_app, liqpay_settings, pool):
    custom = dataclasses.replace(liqpay_settings, liqpay_amounts={"starter": 999, "growth": 4100, "enterprise": 1})
    client = await start_app(custom, LiqPay(PUBLIC_KEY, PRIVATE_KEY))
    body = await checkout(await tenant_on(client, pool, "x"), "starter")
    assert decode(body["data"])["amount"] == 999


async def test_checkout_bad_input_and_not_configured(payer, start_app, settings):
    api = await payer("acme")
    for body in ({"planId": "free"}, {"planId": "gold"}, {}, {"planId": 1}):
        reply = await api.post(CHECKOUT, json=body)
        assert (reply.status, reply.body) == (400, {"error": "Invalid plan. Choose starter, growth, or enterprise."})
    reply = await api.post(CHECKOUT, raw=b"{oops", headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert (await api.get("/api/dashboard/billing/payment-methods")).body == {"stripe": False, "liqpay": True}

    bare = Api(await start_app(settings, None), api.token, api.org_id)
    reply = await bare.post(CHECKOUT, json={"planId": "starter"})
    assert reply.status == 503 and reply.body["error"].startswith("LiqPay is not configured.")


async def test_success_moves_the_org_up_and_reversal_back_to_free(payer, liqpay_http, pool):
    api = await payer("acme")
    order_id = (await checkout(api, "starter"))["orderId"]
    assert await post_callback(liqpay_http, callback(order_id, "subscribed", payment_id=1)) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "starter"
    assert await post_callback(liqpay_http, callback(order_id, "success", payment_id=2)) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "starter"
    assert await post_callback(liqpay_http, callback(order_id, "reversed", payment_id=2)) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "free"


async def test_unsubscribed_ends_only_the_plan_that_order_bought(payer, liqpay_http, pool):
    api = await payer("acme")
    starter = (await checkout(api, "starter"))["orderId"]
    growth = (await checkout(api, "growth"))["orderId"]
    await post_callback(liqpay_http, callback(starter, "subscribed", payment_id=1))
    await post_callback(liqpay_http, callback(growth, "subscribed", amount=4100, payment_id=2))
    assert await plan_of(pool, api.org_id) == "growth"
    assert await post_callback(liqpay_http, callback(starter, "unsubscribed", payment_id=1)) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "growth"
    assert await post_callback(liqpay_http, callback(growth, "unsubscribed", amount=4100, payment_id=2)) == (
        200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "free"


async def test_a_replayed_success_does_not_upgrade_again(payer, liqpay_http, pool):
    api = await payer("acme")
    order_id = (await checkout(api, "growth"))["orderId"]
    paid = callback(order_id, "success", amount=4100, payment_id=77)
    assert await post_callback(liqpay_http, paid) == (200, RECEIVED)
    assert await post_callback(liqpay_http, callback(order_id, "reversed", amount=4100, payment_id=77)) == (
        200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "free"
    replayed = {**paid, "end_date": int(time.time() * 1000) + 5000}  # even restamped, the same payment
    assert await post_callback(liqpay_http, replayed) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "free"
    assert await pool.fetchval("SELECT count(*) FROM webhook_events WHERE provider = 'liqpay'") == 2


async def test_an_old_callback_does_not_roll_the_plan_back(payer, liqpay_http, pool):
    api = await payer("acme")
    order_id = (await checkout(api, "starter"))["orderId"]
    now_ms = int(time.time() * 1000)
    await post_callback(liqpay_http, callback(order_id, "subscribed", payment_id=1, end_date=now_ms))
    late = callback(order_id, "reversed", payment_id=0, end_date=now_ms - 60_000)
    assert await post_callback(liqpay_http, late) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "starter"


@pytest.mark.parametrize("change", [{"amount": 1}, {"amount": 4100}, {"amount": "1650.00", "currency": "USD"},
                                   {"currency": "EUR"}, {"amount": None}, {"amount": True}])
async def test_wrong_amount_or_currency_is_refused(payer, liqpay_http, pool, change):
    api = await payer("acme")
    order_id = (await checkout(api, "starter"))["orderId"]
    status, body = await post_callback(liqpay_http, {**callback(order_id, "success"), **change})
    assert (status, body) == (400, {"error": "Amount or currency does not match the plan"})
    assert await plan_of(pool, api.org_id) == "free"
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0


async def test_an_amount_written_as_text_or_float_is_the_same_amount(payer, liqpay_http, pool):
    api = await payer("acme")
    order_id = (await checkout(api, "starter"))["orderId"]
    assert await post_callback(liqpay_http, callback(order_id, "success", amount=1650.0)) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "starter"


async def test_forged_and_malformed_callbacks_are_refused(payer, liqpay_http, pool):
    api = await payer("acme")
    order_id = (await checkout(api, "enterprise"))["orderId"]
    paid = callback(order_id, "success", amount=12300)
    data = encode(paid)
    assert await post_callback(liqpay_http, data=data, signature=sign(data, "guessed")) == (
        400, {"error": "Invalid signature"})
    assert await post_callback(liqpay_http, data=data, signature=sign(data, "")) == (
        400, {"error": "Invalid signature"})
    assert await post_callback(liqpay_http, data=data, signature=base64.b64encode(b"\0" * 20).decode()) == (
        400, {"error": "Invalid signature"})
    tampered = encode({**paid, "order_id": order_id.replace("enterprise", "starter")})
    assert await post_callback(liqpay_http, data=tampered, signature=sign(data)) == (
        400, {"error": "Invalid signature"})
    for fields in ({}, {"data": data}, {"signature": sign(data)}, {"data": "", "signature": ""}):
        async with liqpay_http.post(HOOK, data=fields) as response:
            assert (response.status, await response.json()) == (400, {"error": "Missing data or signature"})
    async with liqpay_http.post(HOOK, json={"data": data, "signature": sign(data)}) as response:
        assert response.status == 400
    not_base64 = "%%%not-base64%%%"
    assert await post_callback(liqpay_http, data=not_base64) == (400, {"error": "Invalid data"})
    for bad_order in ("liqpay_user_2abc_starter_1711270000000", "x", None, f"liqpay_{api.org_id.hex}_free_1"):
        status, body = await post_callback(liqpay_http, {**paid, "order_id": bad_order})
        assert (status, body) == (400, {"error": "Invalid order_id"}), bad_order
    assert await plan_of(pool, api.org_id) == "free"
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0


async def test_multipart_callbacks_are_read_too(payer, liqpay_http, pool):
    api = await payer("acme")
    order_id = (await checkout(api, "starter"))["orderId"]
    assert await post_callback(liqpay_http, callback(order_id, "success"), multipart=True) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "starter"


async def test_our_own_checkout_data_posted_back_is_not_a_payment(payer, liqpay_http, pool):
    """The checkout data is signed with the same key: sending it to the callback must change nothing."""
    api = await payer("acme")
    body = await checkout(api, "enterprise")
    assert await post_callback(liqpay_http, data=body["data"], signature=body["signature"]) == (200, RECEIVED)
    assert await plan_of(pool, api.org_id) == "free"


async def test_waiting_and_failed_statuses_change_nothing(payer, liqpay_http, pool):
    api = await payer("acme")
    order_id = (await checkout(api, "starter"))["orderId"]
    for status in ("wait_accept", "processing", "failure", "error", "sandbox", "3ds_verify", None):
        assert await post_callback(liqpay_http, callback(order_id, status)) == (200, RECEIVED), status
    assert await plan_of(pool, api.org_id) == "free"


async def test_sandbox_payments_count_only_with_sandbox_keys(start_app, liqpay_settings, pool):
    sandbox_key = "sandbox_i000000001"
    client = await start_app(dataclasses.replace(liqpay_settings, liqpay_public_key=sandbox_key),
                             LiqPay(sandbox_key, PRIVATE_KEY))
    org_id = await pool.fetchval("INSERT INTO organizations (name, kind) VALUES ('x', 'local') RETURNING id")
    order_id = LiqPay.order_id(org_id, "starter", datetime.datetime.now(datetime.timezone.utc))
    assert await post_callback(client, callback(order_id, "sandbox")) == (200, RECEIVED)
    assert await plan_of(pool, org_id) == "starter"


async def test_one_orgs_callback_changes_only_that_org(payer, liqpay_http, pool):
    a, b = await payer("acme"), await payer("globex")
    await pool.execute("UPDATE organizations SET plan = 'growth' WHERE id = $1", b.org_id)
    order_a = (await checkout(a, "starter"))["orderId"]
    await post_callback(liqpay_http, callback(order_a, "success", payment_id=5))
    await post_callback(liqpay_http, callback(order_a, "reversed", payment_id=5))
    assert (await plan_of(pool, a.org_id), await plan_of(pool, b.org_id)) == ("free", "growth")


async def test_refused_outright_when_liqpay_is_not_configured(start_app, settings, pool):
    """With no private key the reference's signature is sha1(data) alone: anyone could sign. Not here."""
    client = await start_app(settings, None)
    org_id = await pool.fetchval("INSERT INTO organizations (name, kind) VALUES ('x', 'local') RETURNING id")
    order_id = f"liqpay_{org_id.hex}_enterprise_{int(time.time() * 1000)}"
    status, body = await post_callback(client, data=(data := encode(callback(order_id, "success", amount=12300))),
                                       signature=sign(data, ""))
    assert status == 503 and body["error"].startswith("LiqPay is not configured.")
    assert await plan_of(pool, org_id) == "free"
