"""Stripe Checkout and the billing portal, through HTTP, the real stripe SDK and a local Stripe fake."""
from __future__ import annotations

import asyncio
import dataclasses

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.stripe import StripeBilling
from tests.conftest import Api, tenant_on
from tests.fakes.stripe import CHECKOUT_HOST, PORTAL_HOST, FakeStripe

BASE = "/api/dashboard/billing"
PUBLIC = "https://app.outreach.test"
PRICES = {"starter": "price_starter_test", "growth": "price_growth_test", "enterprise": "price_enterprise_test"}
INVALID_PLAN = {"error": "Invalid plan. Choose starter, growth, or enterprise."}
NOT_CONFIGURED = {"error": "Stripe is not configured. Set STRIPE_SECRET_KEY."}


@pytest.fixture
async def stripe_fake():
    fake = FakeStripe(prices=tuple(PRICES.values()))
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def billing_settings(settings, stripe_fake):
    return dataclasses.replace(settings, stripe_secret_key=stripe_fake.api_key, stripe_webhook_secret="whsec_test",
                               stripe_base_url=stripe_fake.url(), stripe_prices=dict(PRICES), public_url=PUBLIC)


@pytest.fixture
async def start_app(pool, redis):
    """Factory: a client of the app with the given settings and Stripe port; closed after the test."""
    clients = []

    async def start(settings, stripe_port) -> TestClient:
        app = build_app(settings, Deps(pool=pool, redis=redis, stripe=stripe_port))
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def stripe_port(billing_settings):
    port = StripeBilling(billing_settings.stripe_secret_key, billing_settings.stripe_webhook_secret,
                         billing_settings.stripe_base_url, max_network_retries=0)
    yield port
    await port.close()


@pytest.fixture
async def billing_http(start_app, billing_settings, stripe_port) -> TestClient:
    return await start_app(billing_settings, stripe_port)


@pytest.fixture
def payer(billing_http, pool):
    """Factory: an organization reached by API key on the Stripe-configured app."""

    async def make(name: str) -> Api:
        return await tenant_on(billing_http, pool, name)

    return make


async def customer_of(pool, org_id) -> str | None:
    return await pool.fetchval("SELECT stripe_customer_id FROM organizations WHERE id = $1", org_id)


async def test_checkout_creates_the_customer_once_and_a_subscription_session(billing_http, clerk, stripe_fake, pool):
    clerk_user = Api(billing_http, clerk.mint("user_billing", email="owner@acme.test"))
    reply = await clerk_user.post(BASE + "/checkout", json={"planId": "starter"})
    assert reply.status == 200, reply.body
    assert reply.body["url"].startswith(CHECKOUT_HOST) and set(reply.body) == {"url"}

    org_id = await pool.fetchval("SELECT id FROM organizations WHERE owner_id = 'user_billing'")
    [created] = stripe_fake.seen("/v1/customers")
    assert created.params == {"email": "owner@acme.test", "name": "Personal", "metadata": {"orgId": str(org_id)}}
    assert created.idempotency_key == f"customer-{org_id}"
    customer = await customer_of(pool, org_id)
    assert customer in stripe_fake.customers

    [session] = stripe_fake.seen("/v1/checkout/sessions")
    assert session.params == {
        "customer": customer, "mode": "subscription",
        "line_items": [{"price": PRICES["starter"], "quantity": "1"}],
        "success_url": PUBLIC + "/dashboard/billing?success=true",
        "cancel_url": PUBLIC + "/dashboard/billing?canceled=true",
        "client_reference_id": str(org_id),
        "metadata": {"orgId": str(org_id), "planId": "starter"},
        "subscription_data": {"metadata": {"orgId": str(org_id), "planId": "starter"}},
    }
    assert session.idempotency_key and str(org_id) in session.idempotency_key

    again = await clerk_user.post(BASE + "/checkout", json={"planId": "growth"})
    assert again.status == 200
    assert len(stripe_fake.seen("/v1/customers")) == 1
    assert stripe_fake.seen("/v1/checkout/sessions")[-1].params["customer"] == customer
    assert stripe_fake.seen("/v1/checkout/sessions")[-1].params["line_items"][0]["price"] == PRICES["growth"]
    assert await pool.fetchval("SELECT plan::text FROM organizations WHERE id = $1", org_id) == "free"


async def test_redirect_urls_come_from_configuration_not_the_origin_header(payer, stripe_fake):
    api = await payer("acme")
    reply = await api.post(BASE + "/checkout", json={"planId": "growth"},
                           headers={"Origin": "https://evil.example", "Referer": "https://evil.example/x"})
    assert reply.status == 200
    [session] = stripe_fake.seen("/v1/checkout/sessions")
    assert session.params["success_url"] == PUBLIC + "/dashboard/billing?success=true"
    assert session.params["cancel_url"] == PUBLIC + "/dashboard/billing?canceled=true"
    portal = await api.post(BASE + "/portal", headers={"Origin": "https://evil.example"})
    assert stripe_fake.seen("/v1/billing_portal/sessions")[0].params["return_url"] == PUBLIC + "/dashboard/billing"
    assert portal.status == 200


async def test_a_double_click_gets_the_same_session_back(payer, stripe_fake):
    api = await payer("acme")
    first = await api.post(BASE + "/checkout", json={"planId": "starter"})
    second = await api.post(BASE + "/checkout", json={"planId": "starter"})
    assert first.status == second.status == 200
    assert first.body["url"] == second.body["url"]
    keys = [request.idempotency_key for request in stripe_fake.seen("/v1/checkout/sessions")]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(stripe_fake.sessions) == 1
    other_plan = await api.post(BASE + "/checkout", json={"planId": "enterprise"})
    assert other_plan.body["url"] != first.body["url"]


async def test_concurrent_first_checkouts_make_one_customer(payer, stripe_fake, pool):
    api = await payer("acme")
    stripe_fake.hold_customers = asyncio.Event()
    requests = [asyncio.create_task(api.post(BASE + "/checkout", json={"planId": "starter"})) for _ in range(4)]
    await asyncio.wait_for(stripe_fake.customer_requested.wait(), 10)
    # The first request is inside Stripe; the other three must be queued on the org's lock, not calling Stripe.
    await wait_for_lock_waiters(pool, 3)
    stripe_fake.hold_customers.set()
    replies = await asyncio.gather(*requests)
    assert [reply.status for reply in replies] == [200] * 4
    assert len(stripe_fake.seen("/v1/customers")) == 1 and len(stripe_fake.customers) == 1
    stored = await customer_of(pool, api.org_id)
    assert {request.params["customer"] for request in stripe_fake.seen("/v1/checkout/sessions")} == {stored}


async def wait_for_lock_waiters(pool, count: int) -> None:
    """Until `count` sessions wait on an advisory lock (pg_stat_activity is the observable state)."""
    async def waiting() -> int:
        return await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
            " AND datname = current_database()")

    async def poll():
        while await waiting() < count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 10)


async def test_each_org_checks_out_with_its_own_customer(payer, stripe_fake, pool):
    a, b = await payer("acme"), await payer("globex")
    assert (await a.post(BASE + "/checkout", json={"planId": "starter"})).status == 200
    assert (await b.post(BASE + "/checkout", json={"planId": "growth"})).status == 200
    assert (await a.post(BASE + "/checkout", json={"planId": "growth"})).status == 200
    customer_a, customer_b = await customer_of(pool, a.org_id), await customer_of(pool, b.org_id)
    assert customer_a and customer_b and customer_a != customer_b
    sessions = [request.params for request in stripe_fake.seen("/v1/checkout/sessions")]
    assert [(s["customer"], s["metadata"]["orgId"]) for s in sessions] == [
        (customer_a, str(a.org_id)), (customer_b, str(b.org_id)), (customer_a, str(a.org_id))]
    assert stripe_fake.customers[customer_b]["metadata"] == {"orgId": str(b.org_id)}
    portal = await b.post(BASE + "/portal")
    assert portal.status == 200 and stripe_fake.seen("/v1/billing_portal/sessions")[0].params["customer"] == customer_b


async def test_bad_plans_and_bodies_are_400s_with_no_stripe_call(payer, stripe_fake, pool):
    api = await payer("acme")
    for body in ({"planId": "free"}, {"planId": "premium"}, {"planId": None}, {"planId": 42}, {"planId": ["starter"]},
                 {"plan": "starter"}, {}):
        reply = await api.post(BASE + "/checkout", json=body)
        assert (reply.status, reply.body) == (400, INVALID_PLAN), body
    for raw in (b"{", b"[]", b"", b"starter"):
        reply = await api.post(BASE + "/checkout", raw=raw, headers={"Content-Type": "application/json"})
        assert reply.status == 400 and set(reply.body) == {"error"}, raw
    assert stripe_fake.requests == []
    assert await customer_of(pool, api.org_id) is None


async def test_portal_needs_a_customer_first(payer, stripe_fake):
    api = await payer("acme")
    reply = await api.post(BASE + "/portal")
    assert (reply.status, reply.body) == (400, {"error": "No active subscription found. Please subscribe first."})
    await api.post(BASE + "/checkout", json={"planId": "starter"})
    reply = await api.post(BASE + "/portal")
    assert reply.status == 200 and reply.body["url"].startswith(PORTAL_HOST)


async def test_a_subscribed_org_changes_plans_in_the_portal(payer, stripe_fake, pool):
    api = await payer("acme")
    await pool.execute("UPDATE organizations SET plan = 'starter', stripe_customer_id = 'cus_x', "
                       "stripe_subscription_id = 'sub_x' WHERE id = $1", api.org_id)
    reply = await api.post(BASE + "/checkout", json={"planId": "growth"})
    assert reply.status == 409 and "billing portal" in reply.body["error"]
    assert stripe_fake.requests == []


async def test_a_lapsed_subscription_still_sends_the_org_to_the_portal(payer, stripe_fake, pool):
    api = await payer("acme")  # past_due: free for now, but Stripe may still collect the subscription
    await pool.execute("UPDATE organizations SET plan = 'free', stripe_customer_id = 'cus_x', "
                       "stripe_subscription_id = 'sub_x' WHERE id = $1", api.org_id)
    reply = await api.post(BASE + "/checkout", json={"planId": "starter"})
    assert reply.status == 409 and stripe_fake.requests == []


async def test_not_configured_is_a_503_naming_the_setting(start_app, settings, billing_settings, stripe_port, pool):
    bare = await start_app(settings, None)
    api = await tenant_on(bare, pool, "bare")
    for path, body in (("/checkout", {"planId": "starter"}), ("/checkout", {"planId": "nope"}), ("/portal", None)):
        reply = await api.post(BASE + path, json=body)
        assert (reply.status, reply.body) == (503, NOT_CONFIGURED), path
    assert (await api.get(BASE + "/payment-methods")).body == {"stripe": False, "liqpay": False}

    no_growth = dataclasses.replace(billing_settings, stripe_prices={"starter": PRICES["starter"]})
    api = Api(await start_app(no_growth, stripe_port), api.token, api.org_id)
    reply = await api.post(BASE + "/checkout", json={"planId": "growth"})
    assert reply.status == 503 and "STRIPE_PRICE_GROWTH" in reply.body["error"]
    assert (await api.get(BASE + "/payment-methods")).body == {"stripe": True, "liqpay": False}


@pytest.mark.parametrize("status, kind, message, expected", [
    (400, "invalid_request_error", "No such price: 'price_gone'", "Stripe error: No such price: 'price_gone'"),
    (402, "card_error", "Your card was declined.", "Stripe error: Your card was declined."),
    (500, "api_error", "Something went wrong on Stripe's end.", "Stripe error: Something went wrong on Stripe's end."),
    (429, "rate_limit_error", "Too many requests", "Stripe error: Too many requests"),
])
async def test_stripe_errors_are_502s_and_write_nothing(payer, stripe_fake, pool, status, kind, message, expected):
    api = await payer("acme")
    stripe_fake.fail_next(status, kind, message)
    reply = await api.post(BASE + "/checkout", json={"planId": "starter"})
    assert (reply.status, reply.body) == (502, {"error": expected})
    assert await customer_of(pool, api.org_id) is None  # the customer creation failed: nothing stored


async def test_a_wrong_key_or_unreachable_stripe_is_a_502(start_app, billing_settings, stripe_fake, payer, pool):
    api = await payer("acme")
    wrong = StripeBilling("sk_test_wrong", None, stripe_fake.url(), max_network_retries=0)
    try:
        client = await start_app(billing_settings, wrong)
        reply = await Api(client, api.token, api.org_id).post(BASE + "/checkout", json={"planId": "starter"})
        assert (reply.status, reply.body) == (502, {"error": "Stripe rejected the API key. Check STRIPE_SECRET_KEY."})
    finally:
        await wrong.close()
    await stripe_fake.stop()
    reply = await api.post(BASE + "/checkout", json={"planId": "starter"})
    assert (reply.status, reply.body) == (502, {"error": "Stripe is unreachable. Try again later."})
    assert await customer_of(pool, api.org_id) is None


async def test_payment_methods_and_auth(billing_http, payer):
    api = await payer("acme")
    assert (await api.get(BASE + "/payment-methods")).body == {"stripe": True, "liqpay": False}
    for method, path in (("POST", "/checkout"), ("POST", "/portal"), ("GET", "/payment-methods")):
        async with billing_http.request(method, BASE + path, data=orjson.dumps({"planId": "starter"})) as response:
            assert response.status == 401 and await response.json() == {"error": "Unauthorized"}
