"""POST /api/webhook/stripe over HTTP and PostgreSQL, with events signed as Stripe signs them."""
from __future__ import annotations

import dataclasses
import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.stripe import StripeBilling
from tests.fakes import stripe as fake

PATH = "/api/webhook/stripe"
SECRET = "whsec_test_secret"
PRICES = {"starter": "price_starter_test", "growth": "price_growth_test", "enterprise": "price_enterprise_test"}
RECEIVED = {"received": True}


@pytest.fixture
async def start_app(pool, redis):
    clients, ports = [], []

    async def start(settings, webhook_secret: str | None = SECRET, configured: bool = True) -> TestClient:
        port = StripeBilling("sk_test_fake", webhook_secret, "http://127.0.0.1:9", max_network_retries=0) \
            if configured else None
        client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, stripe=port)),
                                       host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        if port is not None:
            ports.append(port)
        return client

    yield start
    for client in clients:
        await client.close()
    for port in ports:
        await port.close()


@pytest.fixture
async def hook(start_app, settings) -> TestClient:
    return await start_app(dataclasses.replace(settings, stripe_secret_key="sk_test_fake",
                                               stripe_webhook_secret=SECRET, stripe_prices=dict(PRICES)))


@pytest.fixture
async def orgs_ab(pool):
    """Two organizations that already have their Stripe customers (as after a first checkout)."""
    a = await pool.fetchval("INSERT INTO organizations (name, kind, stripe_customer_id) "
                            "VALUES ('acme', 'local', 'cus_A') RETURNING id")
    b = await pool.fetchval("INSERT INTO organizations (name, kind, stripe_customer_id) "
                            "VALUES ('globex', 'local', 'cus_B') RETURNING id")
    return a, b


async def deliver(client: TestClient, payload, secret: str = SECRET, timestamp: int | None = None,
                  header: str | None = None):
    body, signature = fake.signed(payload, secret, timestamp)
    headers = {"Content-Type": "application/json", "Stripe-Signature": header if header is not None else signature}
    async with client.post(PATH, data=body, headers=headers) as response:
        return response.status, await response.json()


async def billing_of(pool, org_id) -> tuple:
    row = await pool.fetchrow("SELECT plan::text, stripe_customer_id, stripe_subscription_id FROM organizations "
                              "WHERE id = $1", org_id)
    return tuple(row)


def ago(seconds: int) -> int:
    return int(time.time()) - seconds


async def test_checkout_completed_sets_plan_and_subscription(hook, orgs_ab, pool):
    a, b = orgs_ab
    event = fake.event("checkout.session.completed", fake.checkout_completed("cus_A", a, "growth", "sub_A1"))
    assert await deliver(hook, event) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("growth", "cus_A", "sub_A1")
    assert await billing_of(pool, b) == ("free", "cus_B", None)
    assert await pool.fetchval("SELECT count(*) FROM webhook_events WHERE provider = 'stripe' AND event_id = $1",
                               event["id"]) == 1


async def test_checkout_for_an_org_without_a_stored_customer_stores_it(hook, pool):
    org = await pool.fetchval("INSERT INTO organizations (name, kind) VALUES ('new', 'local') RETURNING id")
    event = fake.event("checkout.session.completed", fake.checkout_completed("cus_new", org, "starter", "sub_1"))
    assert await deliver(hook, event) == (200, RECEIVED)
    assert await billing_of(pool, org) == ("starter", "cus_new", "sub_1")


async def test_an_unpaid_checkout_stores_ids_but_not_the_plan(hook, orgs_ab, pool):
    a, _ = orgs_ab
    session = fake.checkout_completed("cus_A", a, "growth", "sub_A1", payment_status="unpaid")
    assert await deliver(hook, fake.event("checkout.session.completed", session)) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("free", "cus_A", "sub_A1")


async def test_subscription_lifecycle(hook, orgs_ab, pool):
    a, _ = orgs_ab
    steps = [
        ("customer.subscription.updated", "active", PRICES["growth"], ("growth", "cus_A", "sub_A1")),
        ("customer.subscription.updated", "past_due", PRICES["growth"], ("free", "cus_A", "sub_A1")),
        ("customer.subscription.updated", "active", PRICES["growth"], ("growth", "cus_A", "sub_A1")),
        ("customer.subscription.updated", "active", PRICES["enterprise"], ("enterprise", "cus_A", "sub_A1")),
        ("customer.subscription.updated", "active", "price_not_ours", ("enterprise", "cus_A", "sub_A1")),
        ("customer.subscription.updated", "unpaid", PRICES["enterprise"], ("free", "cus_A", "sub_A1")),
        ("customer.subscription.updated", "active", PRICES["starter"], ("starter", "cus_A", "sub_A1")),
        ("customer.subscription.updated", "canceled", PRICES["starter"], ("free", "cus_A", None)),
        ("customer.subscription.created", "trialing", PRICES["growth"], ("growth", "cus_A", "sub_A1")),
        ("customer.subscription.deleted", "canceled", PRICES["growth"], ("free", "cus_A", None)),
    ]
    for index, (kind, status, price, expected) in enumerate(steps):
        event = fake.event(kind, fake.subscription("sub_A1", "cus_A", status, price), created=ago(100 - index))
        assert await deliver(hook, event) == (200, RECEIVED)
        assert await billing_of(pool, a) == expected, (kind, status, price)


async def test_payment_failure_ends_the_plan_only_when_stripe_stops_retrying(hook, orgs_ab, pool):
    a, _ = orgs_ab
    await pool.execute("UPDATE organizations SET plan = 'growth', stripe_subscription_id = 'sub_A1' WHERE id = $1", a)
    retrying = fake.failed_invoice("cus_A", "sub_A1", next_attempt=int(time.time()) + 86400)
    assert await deliver(hook, fake.event("invoice.payment_failed", retrying)) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("growth", "cus_A", "sub_A1")
    other = fake.failed_invoice("cus_A", "sub_old", next_attempt=None)
    assert await deliver(hook, fake.event("invoice.payment_failed", other)) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("growth", "cus_A", "sub_A1")
    final = fake.failed_invoice("cus_A", "sub_A1", next_attempt=None)
    assert await deliver(hook, fake.event("invoice.payment_failed", final)) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("free", "cus_A", "sub_A1")


async def test_out_of_order_events_do_not_roll_the_plan_back(hook, orgs_ab, pool):
    a, _ = orgs_ab
    created = fake.event("checkout.session.completed", fake.checkout_completed("cus_A", a, "growth", "sub_A1"),
                         created=ago(60))
    updated = fake.event("customer.subscription.updated",
                         fake.subscription("sub_A1", "cus_A", "active", PRICES["growth"]), created=ago(50))
    deleted = fake.event("customer.subscription.deleted",
                         fake.subscription("sub_A1", "cus_A", "canceled", PRICES["growth"]), created=ago(40))
    assert await deliver(hook, created) == (200, RECEIVED)
    assert await deliver(hook, deleted) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("free", "cus_A", None)
    assert await deliver(hook, updated) == (200, RECEIVED)  # late: older than the deletion
    assert await billing_of(pool, a) == ("free", "cus_A", None)
    stamp = await pool.fetchval("SELECT extract(epoch FROM plan_updated_at)::int FROM organizations WHERE id = $1", a)
    assert stamp == deleted["created"]


async def test_a_replayed_event_is_applied_once(hook, orgs_ab, pool):
    a, _ = orgs_ab
    event = fake.event("customer.subscription.updated", fake.subscription("sub_A1", "cus_A", "active",
                                                                          PRICES["growth"]))
    assert await deliver(hook, event) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("growth", "cus_A", "sub_A1")
    # The operator moves the org meanwhile (no timestamp), then Stripe retries the same event.
    await pool.execute("UPDATE organizations SET plan = 'starter', plan_updated_at = NULL WHERE id = $1", a)
    assert await deliver(hook, event) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("starter", "cus_A", "sub_A1")
    assert await pool.fetchval("SELECT count(*) FROM webhook_events WHERE provider = 'stripe'") == 1


async def test_forged_tampered_and_unsigned_events_are_refused(hook, orgs_ab, pool):
    a, _ = orgs_ab
    event = fake.event("checkout.session.completed", fake.checkout_completed("cus_A", a, "enterprise", "sub_X"))
    assert await deliver(hook, event, secret="whsec_attacker") == (400, {"error": "Invalid signature"})
    body, signature = fake.signed(event, SECRET)
    tampered = body.replace(b"enterprise", b"growth")
    async with hook.post(PATH, data=tampered, headers={"Stripe-Signature": signature}) as response:
        assert (response.status, await response.json()) == (400, {"error": "Invalid signature"})
    async with hook.post(PATH, data=body) as response:
        assert (response.status, await response.json()) == (400, {"error": "Missing signature"})
    for header in ("garbage", "t=abc,v1=00", f"t={int(time.time())}", "v1=" + "0" * 64):
        assert await deliver(hook, event, header=header) == (400, {"error": "Invalid signature"}), header
    async with hook.post(PATH, data=b"\xff\xfe", headers={"Stripe-Signature": signature}) as response:
        assert response.status == 400
    assert await billing_of(pool, a) == ("free", "cus_A", None)
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0


async def test_stale_events_are_refused_after_300_seconds(hook, orgs_ab, pool):
    a, _ = orgs_ab
    event = fake.event("customer.subscription.updated", fake.subscription("sub_A1", "cus_A", "active",
                                                                          PRICES["starter"]))
    assert await deliver(hook, event, timestamp=ago(301)) == (400, {"error": "Invalid signature"})
    assert await billing_of(pool, a) == ("free", "cus_A", None)
    assert await deliver(hook, event, timestamp=ago(240)) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("starter", "cus_A", "sub_A1")


async def test_events_stamped_beyond_the_tolerance_in_the_future_are_refused(hook, orgs_ab, pool):
    """A stamp far ahead would keep a captured event replayable long after the 300 s window."""
    a, _ = orgs_ab
    event = fake.event("customer.subscription.updated", fake.subscription("sub_A1", "cus_A", "active",
                                                                          PRICES["starter"]))
    for ahead in (301, 86400 * 365):
        assert await deliver(hook, event, timestamp=ago(-ahead)) == (400, {"error": "Invalid signature"}), ahead
    assert await billing_of(pool, a) == ("free", "cus_A", None)
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0
    assert await deliver(hook, event, timestamp=ago(-240)) == (200, RECEIVED)  # a fast clock within the tolerance
    assert await billing_of(pool, a) == ("starter", "cus_A", "sub_A1")


async def test_signed_but_malformed_payloads_are_400s(hook, pool):
    for payload in ("not json", "[]", json.dumps({"type": "x"}), json.dumps({"id": 5, "type": "x"})):
        status, body = await deliver(hook, payload)
        assert (status, body) == (400, {"error": "Invalid payload"}), payload
    no_time = fake.event("customer.subscription.updated", fake.subscription("sub_1", "cus_A", "active", "p"))
    no_time["created"] = "yesterday"
    assert await deliver(hook, no_time) == (400, {"error": "Invalid payload"})
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0


async def test_one_orgs_events_never_change_another(hook, orgs_ab, pool):
    a, b = orgs_ab
    await pool.execute("UPDATE organizations SET plan = 'growth', stripe_subscription_id = 'sub_B1' WHERE id = $1", b)
    before_b = await billing_of(pool, b)
    attempts = [
        # A's customer, but metadata naming B
        fake.event("customer.subscription.updated",
                   fake.subscription("sub_A1", "cus_A", "canceled", PRICES["growth"], org_id=b)),
        # a checkout naming B, paid by A's customer
        fake.event("checkout.session.completed", fake.checkout_completed("cus_A", b, "enterprise", "sub_A2")),
        # B's subscription id, under A's customer
        fake.event("customer.subscription.deleted", fake.subscription("sub_B1", "cus_A", "canceled", PRICES["growth"])),
        # a customer nobody has
        fake.event("customer.subscription.deleted", fake.subscription("sub_B1", "cus_nobody", "canceled", "p")),
        fake.event("invoice.payment_failed", fake.failed_invoice("cus_A", "sub_B1", next_attempt=None)),
    ]
    for event in attempts:
        assert await deliver(hook, event) == (200, RECEIVED)
    assert await billing_of(pool, b) == before_b
    assert await billing_of(pool, a) == ("free", "cus_A", None)


async def test_events_we_do_not_handle_are_acknowledged(hook, orgs_ab, pool):
    a, _ = orgs_ab
    for kind in ("charge.succeeded", "invoice.paid", "customer.created"):
        assert await deliver(hook, fake.event(kind, {"id": "x", "customer": "cus_A"})) == (200, RECEIVED)
    missing_object = fake.event("customer.subscription.updated", {})
    missing_object["data"] = "nothing"
    assert await deliver(hook, missing_object) == (200, RECEIVED)
    assert await billing_of(pool, a) == ("free", "cus_A", None)


async def test_not_configured_is_a_503(start_app, settings):
    for client in (await start_app(settings, configured=False), await start_app(settings, webhook_secret=None)):
        event = fake.event("customer.subscription.updated", fake.subscription("sub_1", "cus_A", "active", "p"))
        status, body = await deliver(client, event)
        assert status == 503 and "STRIPE_WEBHOOK_SECRET" in body["error"]
        async with client.post(PATH, data=b"{}") as response:
            assert response.status == 503
