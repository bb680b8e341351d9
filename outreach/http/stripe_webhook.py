"""POST /api/webhook/stripe: subscription events applied to the organization that pays.

Verified (signature and a timestamp under 300 s old), deduplicated by event id in the transaction that
applies it, and ordered: each change is stamped with the event's `created`, and a change older than the
org's stored state is dropped (Stripe delivers late and out of order). The org is the one that owns the
event's customer (checkout sessions name it in their metadata); an event whose metadata names another
org than the customer's owner is ignored, so one tenant's event never changes another's plan.
"""
from __future__ import annotations

import datetime
import logging
import uuid
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import keys, params, validation, wire
from outreach.runtime import errors, policy
from outreach.storage import billing, db, webhook_events

log = logging.getLogger(__name__)
NOT_CONFIGURED = "Stripe webhooks are not configured. Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET."
ACTIVE = {"active", "trialing"}
LAPSED = {"past_due", "unpaid", "paused"}  # no plan until paid; the subscription may still recover
ENDED = {"canceled", "incomplete_expired"}
INVALID_PAYLOAD = "Invalid payload"


class StripeEvent(validation.Model):
    """Read once the signature is verified: described loosely, since Stripe owns the event's shape."""

    id: validation.Text(min_length=1)
    type: validation.Text()
    created: validation.WholeNumber
    data: Annotated[validation.Anything, Field(description="`object`: the checkout session, subscription or invoice; "
                                                           "an event without one is acknowledged and ignored")] = None


class StripeSignature(validation.Model):
    textual = True
    signature: Annotated[str, validation.Required(validation.blank),
                         Field(alias="Stripe-Signature", description="t=<time>,v1=<HMAC-SHA256>")]


@params.accepts(body=StripeEvent, headers=StripeSignature)
@params.answers(200, validation.WebhookReceived)
async def receive_event(request: web.Request) -> web.Response:
    port = request.app.get(keys.STRIPE)
    if port is None or not port.webhook_secret:
        raise errors.NotConfigured(NOT_CONFIGURED)
    signature = params.parse(request, "headers", request.headers)["signature"]
    event = params.parse(request, "body", port.verify_event(await request.read(), signature))
    at = event_time(event)
    prices, grace_days = request.app[keys.SETTINGS].stripe_prices, request.app[keys.SETTINGS].number_release_grace_days
    async with db.transaction(request.app[keys.DB]) as conn:
        if await webhook_events.record_event(conn, "stripe", event["id"]):
            outcome = await apply_event(conn, event, at, {price: plan for plan, price in prices.items()}, grace_days)
        else:
            outcome = "duplicate"
    log.info("stripe event %s %s: %s", event["id"], event["type"], outcome)
    return wire.json_response({"received": True})


async def apply_event(conn, event: dict, at: datetime.datetime, plans_by_price: dict, grace_days: int) -> str:
    decide, data = DECISIONS.get(event["type"]), event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if decide is None or not isinstance(obj, dict):
        return "ignored"
    state = await org_of(conn, event["type"], obj)
    if state is None:
        return "no matching organization"
    changes = decide(obj, state, plans_by_price)
    if not changes:
        return "no change"
    applied = await billing.apply_change(conn, state["id"], at, changes, grace_days=grace_days)
    return f"applied {changes}" if applied else "older than the stored state: dropped"


async def org_of(conn, kind: str, obj: dict) -> dict | None:
    """The org the event is about, locked until the transaction ends; None when it names no org of ours."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    named = org_id_of(metadata.get("orgId")) or org_id_of(obj.get("client_reference_id"))
    customer = id_of(obj.get("customer"))
    if kind == "checkout.session.completed" and named:
        state = await billing.get_state(conn, named, lock=True)
    else:
        state = await billing.state_for_customer(conn, customer, lock=True) if customer else None
    if state is None:
        return None
    if named and str(named) != str(state["id"]):
        log.warning("stripe customer %s belongs to org %s, but the event names org %s", customer, state["id"], named)
        return None
    if customer and state["stripe_customer_id"] not in (None, customer):
        log.warning("stripe event for org %s names customer %s, not its own", state["id"], customer)
        return None
    return state


def decide_checkout(session: dict, state: dict, plans_by_price: dict) -> dict:
    changes = {}
    customer, subscription = id_of(session.get("customer")), id_of(session.get("subscription"))
    if customer and not state["stripe_customer_id"]:
        changes["stripe_customer_id"] = customer
    if subscription:
        changes["stripe_subscription_id"] = subscription
    plan = (session.get("metadata") or {}).get("planId")
    if plan in policy.PAID_PLANS and session.get("payment_status") != "unpaid":
        changes["plan"] = plan
    return changes


def decide_subscription(subscription: dict, state: dict, plans_by_price: dict) -> dict:
    status, subscription_id = subscription.get("status"), subscription.get("id")
    if status in ACTIVE:
        changes = {"stripe_subscription_id": subscription_id}
        plan = plans_by_price.get(price_of(subscription))
        if plan:  # a price we do not sell keeps the plan as it is
            changes["plan"] = plan
        return changes
    if state["stripe_subscription_id"] not in (None, subscription_id):
        return {}  # news of a subscription the org has since replaced
    if status in LAPSED:
        return {"plan": "free"}
    if status in ENDED:
        return {"plan": "free", "stripe_subscription_id": None}
    return {}  # incomplete: the first payment is still under way


def decide_deletion(subscription: dict, state: dict, plans_by_price: dict) -> dict:
    if state["stripe_subscription_id"] not in (None, subscription.get("id")):
        return {}
    return {"plan": "free", "stripe_subscription_id": None}


def decide_payment_failure(invoice: dict, state: dict, plans_by_price: dict) -> dict:
    """While Stripe still retries, the subscription turns past_due (its own event); once it stops, no plan."""
    if invoice.get("next_payment_attempt") is not None:
        return {}
    subscription = subscription_of_invoice(invoice)
    if not subscription or subscription != state["stripe_subscription_id"]:
        return {}
    return {"plan": "free"}


DECISIONS = {
    "checkout.session.completed": decide_checkout,
    "customer.subscription.created": decide_subscription,
    "customer.subscription.updated": decide_subscription,
    "customer.subscription.deleted": decide_deletion,
    "invoice.payment_failed": decide_payment_failure,
}


def event_time(event: dict) -> datetime.datetime:
    created = event.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise errors.Invalid(INVALID_PAYLOAD)
    return datetime.datetime.fromtimestamp(created, datetime.timezone.utc)


def id_of(value) -> str | None:
    """A Stripe reference: an id string, or the object itself when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def org_id_of(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def price_of(subscription: dict) -> str | None:
    items = (subscription.get("items") or {}).get("data") if isinstance(subscription.get("items"), dict) else None
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        return None
    return id_of(items[0].get("price"))


def subscription_of_invoice(invoice: dict) -> str | None:
    """Older API versions put it at the top; newer ones under parent.subscription_details."""
    parent = invoice.get("parent") if isinstance(invoice.get("parent"), dict) else {}
    details = parent.get("subscription_details") if isinstance(parent.get("subscription_details"), dict) else {}
    return id_of(invoice.get("subscription")) or id_of(details.get("subscription"))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/webhook/stripe", receive_event)
