"""POST /api/webhook/liqpay: LiqPay's server callback, applied to the organization named in the order id.

Refused outright when LiqPay is not configured (with an empty private key anyone could sign). The
signature is compared in constant time; a payment must carry the plan's amount in UAH; a callback is
applied once per payment id and status (a captured `success` replayed later does nothing); and, as for
Stripe, a change stamped earlier than the org's stored billing state is dropped.
"""
from __future__ import annotations

import datetime
import logging
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import keys, params, validation, wire
from outreach.http.billing import liqpay_port
from outreach.runtime import errors
from outreach.storage import billing, db, webhook_events

log = logging.getLogger(__name__)
UPGRADES = {"success", "subscribed"}
DOWNGRADES = {"reversed", "unsubscribed"}


class LiqPayCallback(validation.Model):
    textual = True
    data: Annotated[str, validation.Required(validation.blank), Field(description="base64 of the payment's JSON")]
    signature: Annotated[str, validation.Required(validation.blank),
                         Field(description="base64 of SHA-1 over private key + data + private key")]


@params.accepts(form=LiqPayCallback)
@params.answers(200, validation.WebhookReceived)
async def receive_callback(request: web.Request) -> web.Response:
    port = liqpay_port(request)
    fields = params.parse(request, "form", await params.read_form(request))
    data, signature = fields["data"], fields["signature"]
    payload = port.verify_callback(data, signature)
    org_id, plan = port.parse_order_id(payload.get("order_id"))
    status = payload.get("status")
    upgrades = UPGRADES | ({"sandbox"} if port.sandbox else set())
    if status not in upgrades and status not in DOWNGRADES:
        log.info("liqpay order %s: status %s, nothing to apply", payload.get("order_id"), status)
        return wire.json_response({"received": True})
    if status in upgrades:
        check_payment(payload, request.app[keys.SETTINGS].liqpay_amounts[plan])
    event_id = f"{payload.get('payment_id') or payload['order_id']}:{status}"
    async with db.transaction(request.app[keys.DB]) as conn:
        if await webhook_events.record_event(conn, "liqpay", event_id):
            outcome = await apply_status(conn, org_id, plan, status in upgrades, callback_time(payload),
                                         request.app[keys.SETTINGS].number_release_grace_days)
        else:
            outcome = "duplicate"
    log.info("liqpay %s for org %s: %s", event_id, org_id, outcome)
    return wire.json_response({"received": True})


def check_payment(payload: dict, amount: int) -> None:
    """What was paid must be what the plan costs: a signed callback for a cheaper order buys no bigger plan."""
    paid = payload.get("amount")
    try:
        matches = float(paid) == float(amount) and not isinstance(paid, bool)
    except (TypeError, ValueError):
        matches = False
    if not matches or payload.get("currency") != "UAH":
        raise errors.Invalid("Amount or currency does not match the plan")


async def apply_status(conn, org_id, plan: str, upgrade: bool, at: datetime.datetime, grace_days: int) -> str:
    state = await billing.get_state(conn, org_id, lock=True)
    if state is None:
        return "no such organization"
    if not upgrade and (state["plan"] != plan or state["stripe_subscription_id"]):
        return "the org has moved to another plan or subscription: kept"
    changes = {"plan": plan if upgrade else "free"}
    applied = await billing.apply_change(conn, org_id, at, changes, grace_days=grace_days)
    return f"applied {changes}" if applied else "older than the stored state: dropped"


def callback_time(payload: dict) -> datetime.datetime:
    """When LiqPay finished the operation (`end_date`, ms), else now."""
    end = payload.get("end_date")
    if isinstance(end, (int, float)) and not isinstance(end, bool) and end > 0:
        return datetime.datetime.fromtimestamp(end / 1000, datetime.timezone.utc)
    return datetime.datetime.now(datetime.timezone.utc)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/webhook/liqpay", receive_callback)
