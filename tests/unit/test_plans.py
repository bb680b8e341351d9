"""Plans without I/O: limits and their configuration, LiqPay signing and order ids, Stripe event decisions."""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import uuid

import pytest

from outreach.http import stripe_webhook
from outreach.runtime import errors, policy
from outreach.runtime.config import Settings
from outreach.runtime.errors import ConfigError
from outreach.runtime.models import Plan, PlanLimits
from outreach.providers.liqpay import LiqPay
from outreach.storage import usage

PRICES = {"price_s": "starter", "price_g": "growth", "price_e": "enterprise"}


# --- limits -----------------------------------------------------------------------------------------

def test_default_limits_and_their_wire_form():
    assert policy.limits_for("free") == PlanLimits(0, 0, 0, numbers=0, leads=1000)
    assert policy.limits_for("starter") == PlanLimits(minutes=500, telegram=100, emails=500, numbers=1, leads=10_000)
    assert policy.limits_for("growth") == PlanLimits(minutes=2000, telegram=500, emails=2000, numbers=3, leads=100_000)
    assert policy.limits_for("enterprise") == PlanLimits(*[policy.UNLIMITED] * 5)
    assert policy.wire_limits(policy.limits_for("enterprise")) == {"minutes": 999999, "telegram": 999999,
                                                                   "emails": 999999}
    assert policy.wire_limits(policy.limits_for("starter")) == {"minutes": 500, "telegram": 100, "emails": 500}
    assert policy.limits_for("platinum") == policy.limits_for(None) == policy.limits_for("free")


def test_quota_room_is_none_when_unlimited():
    assert policy.quota_room(3, 1) == 2
    assert policy.quota_room(1, 4) == 0
    assert policy.quota_room(None, 10**9) is None
    assert policy.quota_room(policy.UNLIMITED, 10**9) is None


def test_limits_come_from_the_table_given():
    table = policy.parse_plan_limits('{"free": {"emails": 20}}')
    assert policy.limits_for("free", table) == PlanLimits(minutes=0, telegram=0, emails=20, numbers=0, leads=1000)
    assert policy.limits_for("nonsense", table).emails == 20
    assert policy.limits_for("free", None).emails == 0


def test_plan_limit_overrides_are_laid_over_the_defaults():
    table = policy.parse_plan_limits(json.dumps({
        "free": {"minutes": 10, "telegram": 5, "emails": 25, "leads": 50},
        "growth": {"emails": None, "numbers": 10},
        "enterprise": {"minutes": 50000, "telegram": "unlimited"},
    }))
    assert table[Plan.FREE] == PlanLimits(10, 5, 25, numbers=0, leads=50)
    assert table[Plan.STARTER] == policy.DEFAULT_PLAN_LIMITS[Plan.STARTER]
    assert table[Plan.GROWTH] == PlanLimits(2000, 500, policy.UNLIMITED, numbers=10, leads=100_000)
    assert table[Plan.ENTERPRISE] == PlanLimits(50000, *[policy.UNLIMITED] * 4)
    assert policy.parse_plan_limits(None) == policy.parse_plan_limits("") == policy.DEFAULT_PLAN_LIMITS
    assert policy.parse_plan_limits('{"free": {"emails": 99999999999}}')[Plan.FREE].emails == policy.UNLIMITED


@pytest.mark.parametrize("text, fragment", [
    ("not json", "JSON object"),
    ("[1, 2]", "JSON object"),
    ('{"gold": {"emails": 1}}', "unknown plan 'gold'"),
    ('{"free": 5}', "free must be an object"),
    ('{"free": {"sms": 5}}', "free must be an object"),
    ('{"free": {"emails": -1}}', "free.emails"),
    ('{"free": {"numbers": -1}}', "free.numbers"),
    ('{"free": {"emails": 1.5}}', "free.emails"),
    ('{"free": {"emails": true}}', "free.emails"),
    ('{"free": {"emails": "lots"}}', "free.emails"),
])
def test_bad_plan_limits_say_what_is_wrong(text, fragment):
    with pytest.raises(errors.Invalid, match=fragment.replace(".", r"\.")):
        policy.parse_plan_limits(text)
    with pytest.raises(ConfigError, match="OUTREACH_PLAN_LIMITS"):
        Settings.from_env({"OUTREACH_PLAN_LIMITS": text})


def test_billing_settings_from_the_environment():
    defaults = Settings.from_env({})
    assert defaults.plan_limits == policy.DEFAULT_PLAN_LIMITS
    assert defaults.stripe_prices == {}
    assert defaults.liqpay_amounts == {"starter": 1650, "growth": 4100, "enterprise": 12300}
    settings = Settings.from_env({
        "OUTREACH_PLAN_LIMITS": '{"free": {"emails": 3}}',
        "STRIPE_PRICE_STARTER": "price_1Abc", "STRIPE_PRICE_ENTERPRISE": " price_9Xyz ",
        "LIQPAY_AMOUNT_GROWTH": "3999",
    })
    assert settings.plan_limits[Plan.FREE].emails == 3
    assert settings.stripe_prices == {"starter": "price_1Abc", "enterprise": "price_9Xyz"}
    assert settings.liqpay_amounts == {"starter": 1650, "growth": 3999, "enterprise": 12300}
    for value in ("0", "-5", "lots"):
        with pytest.raises(ConfigError, match="LIQPAY_AMOUNT_STARTER"):
            Settings.from_env({"LIQPAY_AMOUNT_STARTER": value})


@pytest.mark.parametrize("now, seconds", [
    (datetime.datetime(2026, 1, 31, 23, 59, 0, tzinfo=datetime.timezone.utc), 60),
    (datetime.datetime(2026, 2, 28, 0, 0, 0, tzinfo=datetime.timezone.utc), 86400),
    (datetime.datetime(2024, 2, 28, 0, 0, 0, tzinfo=datetime.timezone.utc), 2 * 86400),
    (datetime.datetime(2026, 12, 31, 12, 0, 0, tzinfo=datetime.timezone.utc), 12 * 3600),
])
def test_limits_reset_at_the_next_utc_month(now, seconds):
    assert usage.seconds_to_next_month(now) == seconds


# --- LiqPay ------------------------------------------------------------------------------------------

def test_liqpay_signs_as_documented():
    port = LiqPay("i_public", "secret")
    data, signature = port.encode({"a": 1})
    assert json.loads(base64.b64decode(data)) == {"a": 1}
    assert signature == base64.b64encode(hashlib.sha1(("secret" + data + "secret").encode()).digest()).decode()
    assert port.verify_callback(data, signature) == {"a": 1}
    for forged in (signature[:-2] + "AA", "", base64.b64encode(hashlib.sha1(data.encode()).digest()).decode()):
        with pytest.raises(errors.Invalid, match="Invalid signature"):
            port.verify_callback(data, forged)


def test_liqpay_refuses_to_exist_without_both_keys():
    for public, private in (("", "k"), ("k", ""), ("", "")):
        with pytest.raises(errors.NotConfigured, match="LIQPAY_PRIVATE_KEY"):
            LiqPay(public, private)
    assert LiqPay("sandbox_i123", "k").sandbox and not LiqPay("i123", "k").sandbox


def test_liqpay_subscription_params():
    now = datetime.datetime(2026, 3, 24, 15, 30, tzinfo=datetime.timezone.utc)
    data, _ = LiqPay("i_public", "secret").subscription("liqpay_x", 1650, "Starter", "https://a/r", "https://a/s", now)
    params = json.loads(base64.b64decode(data))
    assert params == {"public_key": "i_public", "version": 3, "action": "subscribe", "amount": 1650,
                      "currency": "UAH", "description": "Starter", "order_id": "liqpay_x",
                      "subscribe_date_start": "2026-03-24 00:00:00", "subscribe_periodicity": "month",
                      "result_url": "https://a/r", "server_url": "https://a/s", "language": "uk"}


def test_liqpay_order_ids_name_the_org_and_plan():
    org_id = uuid.uuid4()
    now = datetime.datetime(2026, 3, 24, tzinfo=datetime.timezone.utc)
    order_id = LiqPay.order_id(org_id, "growth", now)
    assert order_id == f"liqpay_{org_id.hex}_growth_{int(now.timestamp() * 1000)}"
    assert LiqPay.parse_order_id(order_id) == (org_id, "growth")
    for bad in ("liqpay_user_2abc_starter_1711270000000", f"liqpay_{org_id.hex}_free_1",
                f"liqpay_{org_id.hex}_growth_", f"liqpay_{org_id.hex}_growth_1_2", f"x{order_id}",
                f"{order_id}\n", None, 5, ""):
        with pytest.raises(errors.Invalid, match="Invalid order_id"):
            LiqPay.parse_order_id(bad)


# --- Stripe event decisions ---------------------------------------------------------------------------

def state(plan: str = "free", subscription: str | None = None, customer: str | None = "cus_1") -> dict:
    return {"id": uuid.uuid4(), "plan": plan, "stripe_subscription_id": subscription,
            "stripe_customer_id": customer}


def sub(status: str, price: str = "price_g", subscription_id: str = "sub_1") -> dict:
    return {"id": subscription_id, "status": status, "customer": "cus_1",
            "items": {"data": [{"price": {"id": price}}]}}


@pytest.mark.parametrize("status, current, expected", [
    ("active", None, {"stripe_subscription_id": "sub_1", "plan": "growth"}),
    ("trialing", "sub_1", {"stripe_subscription_id": "sub_1", "plan": "growth"}),
    ("active", "sub_old", {"stripe_subscription_id": "sub_1", "plan": "growth"}),  # a new subscription wins
    ("past_due", "sub_1", {"plan": "free"}),
    ("unpaid", "sub_1", {"plan": "free"}),
    ("paused", None, {"plan": "free"}),
    ("canceled", "sub_1", {"plan": "free", "stripe_subscription_id": None}),
    ("incomplete_expired", "sub_1", {"plan": "free", "stripe_subscription_id": None}),
    ("canceled", "sub_new", {}),  # the old subscription's end does not end the new one
    ("past_due", "sub_new", {}),
    ("incomplete", None, {}),
])
def test_subscription_status_decides_the_plan(status, current, expected):
    assert stripe_webhook.decide_subscription(sub(status), state(subscription=current), PRICES) == expected


def test_unknown_price_keeps_the_plan():
    assert stripe_webhook.decide_subscription(sub("active", "price_other"), state("growth"), PRICES) == {
        "stripe_subscription_id": "sub_1"}
    assert stripe_webhook.decide_subscription({"id": "sub_1", "status": "active"}, state(), PRICES) == {
        "stripe_subscription_id": "sub_1"}


def test_deletion_ends_only_the_current_subscription():
    assert stripe_webhook.decide_deletion(sub("canceled"), state("growth", "sub_1"), PRICES) == {
        "plan": "free", "stripe_subscription_id": None}
    assert stripe_webhook.decide_deletion(sub("canceled"), state("growth", "sub_2"), PRICES) == {}


def test_checkout_decision():
    session = {"customer": "cus_1", "subscription": "sub_1", "payment_status": "paid",
               "metadata": {"orgId": "x", "planId": "starter"}}
    assert stripe_webhook.decide_checkout(session, state(customer=None), PRICES) == {
        "stripe_customer_id": "cus_1", "stripe_subscription_id": "sub_1", "plan": "starter"}
    assert stripe_webhook.decide_checkout(session, state(), PRICES) == {"stripe_subscription_id": "sub_1",
                                                                        "plan": "starter"}
    unpaid = {**session, "payment_status": "unpaid"}
    assert "plan" not in stripe_webhook.decide_checkout(unpaid, state(), PRICES)
    for plan in ("free", "platinum", None):
        bad = {**session, "metadata": {"planId": plan}}
        assert "plan" not in stripe_webhook.decide_checkout(bad, state(), PRICES)


def test_payment_failure_decision_and_invoice_shapes():
    current = state("growth", "sub_1")
    new_shape = {"next_payment_attempt": None, "parent": {"subscription_details": {"subscription": "sub_1"}}}
    old_shape = {"next_payment_attempt": None, "subscription": "sub_1"}
    assert stripe_webhook.decide_payment_failure(new_shape, current, PRICES) == {"plan": "free"}
    assert stripe_webhook.decide_payment_failure(old_shape, current, PRICES) == {"plan": "free"}
    assert stripe_webhook.decide_payment_failure({**old_shape, "next_payment_attempt": 1}, current, PRICES) == {}
    assert stripe_webhook.decide_payment_failure({**old_shape, "subscription": "sub_9"}, current, PRICES) == {}
    assert stripe_webhook.decide_payment_failure({"next_payment_attempt": None}, current, PRICES) == {}


def test_references_and_times():
    assert stripe_webhook.id_of("cus_1") == stripe_webhook.id_of({"id": "cus_1", "object": "customer"}) == "cus_1"
    assert stripe_webhook.id_of(None) is stripe_webhook.id_of("") is stripe_webhook.id_of(5) is None
    assert stripe_webhook.price_of({"items": {"data": []}}) is None
    assert stripe_webhook.price_of({"items": {"data": [{"price": "price_s"}]}}) == "price_s"
    assert stripe_webhook.event_time({"created": 0}) == datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    for created in (None, "1", 1.5, True):
        with pytest.raises(errors.Invalid):
            stripe_webhook.event_time({"created": created})
