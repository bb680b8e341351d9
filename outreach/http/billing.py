"""Billing routes: this month's usage against the plan, Stripe Checkout and portal, LiqPay checkout data.

Redirect and callback URLs come from OUTREACH_PUBLIC_URL, never from the request (its Origin header is
the caller's to choose). The Stripe and LiqPay ports are built by service.py only when configured: an
absent port is a 503 naming what to set.
"""
from __future__ import annotations

import datetime
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import keys, params, validation, wire
from outreach.http.auth import admin_only, principal
from outreach.runtime import errors, policy
from outreach.storage import billing, db, usage

STRIPE_NOT_CONFIGURED = "Stripe is not configured. Set STRIPE_SECRET_KEY."
LIQPAY_NOT_CONFIGURED = "LiqPay is not configured. Set LIQPAY_PUBLIC_KEY and LIQPAY_PRIVATE_KEY."
BILLING_PAGE = "/dashboard/billing"


class PlanChoice(validation.Model):
    plan_id: validation.one_of(policy.PAID_PLANS)


class RedirectUrl(validation.Reply):
    url: Annotated[str, Field(json_schema_extra={"format": "uri"})]


class PlanLimits(validation.Reply):
    """Per month; null: not limited."""

    minutes: int | None
    telegram: int | None
    emails: int | None


class Usage(validation.Reply):
    minutes: int
    telegram_messages: int
    emails: int
    plan: str
    limits: PlanLimits


class PaymentMethods(validation.Reply):
    stripe: bool
    liqpay: bool


class LiqPayCheckout(validation.Reply):
    data: str
    signature: str
    order_id: str


def stripe_port(request: web.Request):
    return keys.required(request, keys.STRIPE, STRIPE_NOT_CONFIGURED)


def liqpay_port(request: web.Request):
    return keys.required(request, keys.LIQPAY, LIQPAY_NOT_CONFIGURED)


@params.answers(200, Usage)
async def get_usage(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        row = await usage.current_usage(conn, principal(request).org_id)
    table = request.app[keys.SETTINGS].plan_limits
    plan = policy.plan_in_effect(row["plan"], table)  # `self-hosted` (null limits) where nobody is billed
    return wire.json_response({
        "minutes": row["minutes"],
        "telegramMessages": row["telegram"],
        "emails": row["emails"],
        "plan": plan,
        "limits": policy.wire_plan_limits(plan, table),
    })


@params.answers(200, PaymentMethods)
async def get_payment_methods(request: web.Request) -> web.Response:
    """What can take a payment now: Stripe needs its key and at least one plan's price."""
    settings = request.app[keys.SETTINGS]
    return wire.json_response({
        "stripe": request.app.get(keys.STRIPE) is not None and bool(settings.stripe_prices),
        "liqpay": request.app.get(keys.LIQPAY) is not None,
    })


@admin_only
@params.accepts(body=PlanChoice)
@params.answers(200, RedirectUrl)
async def create_checkout(request: web.Request) -> web.Response:
    port = stripe_port(request)
    settings = request.app[keys.SETTINGS]
    plan = (await params.body(request))["plan_id"]
    price = settings.stripe_prices.get(plan)
    if not price:
        raise errors.NotConfigured(f"Stripe has no price for the {plan} plan. Set STRIPE_PRICE_{plan.upper()}.")
    org_id = principal(request).org_id
    state = await load_state(request, org_id)
    if state["stripe_subscription_id"]:
        # Also when it lapsed (past_due, unpaid): Stripe may still collect it, so a second one would bill twice.
        raise errors.Conflict("This organization already has a subscription. Change the plan in the billing portal.")
    customer = await ensure_customer(request, port, state)
    url = await port.create_checkout(
        customer, price,
        success_url=f"{settings.public_url}{BILLING_PAGE}?success=true",
        cancel_url=f"{settings.public_url}{BILLING_PAGE}?canceled=true",
        metadata={"orgId": str(org_id), "planId": plan},
        idempotency_key=checkout_key(state, plan, price),
    )
    return wire.json_response({"url": url})


def checkout_key(state: dict, plan: str, price: str) -> str:
    """One Checkout Session per org, plan and billing state: a double click gets the same session back, while
    a checkout after the plan changed (a subscription ended) gets a new one."""
    changed = state["plan_updated_at"]
    version = int(changed.timestamp() * 1_000_000) if changed else 0
    return f"checkout-{state['id']}-{plan}-{price}-{version}"


async def ensure_customer(request: web.Request, port, state: dict) -> str:
    """The org's one Stripe customer, created on its first checkout.

    Two first checkouts at once must not make two customers: the creation holds a per-org lock (and its
    connection) across the Stripe call, rare enough to afford; the idempotency key covers network retries.
    """
    if state["stripe_customer_id"]:
        return state["stripe_customer_id"]
    async with db.transaction(request.app[keys.DB]) as conn:
        await billing.lock_customer_creation(conn, state["id"])
        current = await billing.get_state(conn, state["id"])
        if current["stripe_customer_id"]:
            return current["stripe_customer_id"]
        customer = await port.create_customer(str(state["id"]), state["owner_email"], state["name"])
        return await billing.save_customer(conn, state["id"], customer)


@admin_only
@params.answers(200, RedirectUrl)
async def create_portal(request: web.Request) -> web.Response:
    port = stripe_port(request)
    state = await load_state(request, principal(request).org_id)
    if not state["stripe_customer_id"]:
        raise errors.Invalid("No active subscription found. Please subscribe first.")
    settings = request.app[keys.SETTINGS]
    url = await port.create_portal(state["stripe_customer_id"], f"{settings.public_url}{BILLING_PAGE}")
    return wire.json_response({"url": url})


@admin_only
@params.accepts(body=PlanChoice)
@params.answers(200, LiqPayCheckout)
async def create_liqpay_checkout(request: web.Request) -> web.Response:
    port = liqpay_port(request)
    settings = request.app[keys.SETTINGS]
    plan = (await params.body(request))["plan_id"]
    now = datetime.datetime.now(datetime.timezone.utc)
    order_id = port.order_id(principal(request).org_id, plan, now)
    # ?success=true is what the billing page shows its banner for (as after Stripe); the plan itself is set only
    # by LiqPay's signed callback, never by coming back to this URL.
    data, signature = port.subscription(
        order_id, settings.liqpay_amounts[plan], f"Outreach Runtime {plan} plan, monthly subscription",
        result_url=f"{settings.public_url}{BILLING_PAGE}?success=true&provider=liqpay",
        server_url=f"{settings.public_url}/api/webhook/liqpay", now=now,
    )
    return wire.json_response({"data": data, "signature": signature, "orderId": order_id})


async def load_state(request: web.Request, org_id) -> dict:
    async with db.connection(request.app[keys.DB]) as conn:
        state = await billing.get_state(conn, org_id)
    if state is None:
        raise errors.NotFound("Organization not found")
    return state


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/billing"
    router.add_get(base + "/usage", get_usage)
    router.add_get(base + "/payment-methods", get_payment_methods)
    router.add_post(base + "/checkout", create_checkout)
    router.add_post(base + "/portal", create_portal)
    router.add_post(base + "/liqpay", create_liqpay_checkout)
