"""A local server speaking Stripe's API wire format for what billing uses, and webhook event builders.

Requests arrive form-encoded with bracket keys (`line_items[0][price]=...`), authenticated by the secret
key as a bearer token; answers are Stripe's JSON objects and error bodies. Idempotency keys behave as
Stripe's: the same key with the same parameters replays the first answer (`Idempotent-Replayed: true`),
with other parameters it is a 400 `idempotency_error`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
import time
import urllib.parse

import stripe
from aiohttp import web

from tests.fakes.server import LocalServer

CHECKOUT_HOST = "https://checkout.stripe.com/c/pay/"
PORTAL_HOST = "https://billing.stripe.com/p/session/"
BRACKETS = re.compile(r"\[([^\]]*)\]")


def parse_form(body: str) -> dict:
    """`a[b][0][c]=x` pairs into nested dicts and lists, as Stripe reads them."""
    root: dict = {}
    for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True):
        head = key.split("[", 1)[0]
        parts = [head, *BRACKETS.findall(key[len(head):])]
        node = root
        for part, following in zip(parts, parts[1:]):
            node = _slot(node, part, [] if following.isdigit() else {})
        _slot(node, parts[-1], value, replace=True)
    return root


def _slot(node, part: str, value, replace: bool = False):
    """node[part] (a list index when node is a list), set to `value` when missing or when replacing."""
    if isinstance(node, list):
        index = int(part)
        node.extend([None] * (index + 1 - len(node)))
        if replace or node[index] is None:
            node[index] = value
        return node[index]
    if replace or part not in node:
        node[part] = value
    return node[part]


def error_body(kind: str, message: str, code: str | None = None, param: str | None = None) -> dict:
    error = {"type": kind, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    params: dict
    idempotency_key: str | None


class FakeStripe(LocalServer):
    def __init__(self, api_key: str = "sk_test_fake", prices: tuple[str, ...] = ()):
        super().__init__()
        self.api_key = api_key
        self.prices = set(prices)
        self.requests: list[Seen] = []
        self.customers: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.failures: list[tuple[int, dict]] = []
        self.idempotent: dict[str, tuple[dict, int, dict]] = {}
        self.hold_customers: asyncio.Event | None = None  # when set up, customers.create waits for it
        self.customer_requested = asyncio.Event()
        self.app.router.add_post("/v1/customers", self.endpoint(self.create_customer))
        self.app.router.add_post("/v1/checkout/sessions", self.endpoint(self.create_checkout_session))
        self.app.router.add_post("/v1/billing_portal/sessions", self.endpoint(self.create_portal_session))

    def fail_next(self, status: int, kind: str, message: str, code: str | None = None) -> None:
        self.failures.append((status, error_body(kind, message, code)))

    def seen(self, path: str) -> list[Seen]:
        return [request for request in self.requests if request.path == path]

    def endpoint(self, create):
        async def handle(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return web.json_response(error_body("invalid_request_error", "Invalid API Key provided: sk_test_****"),
                                         status=401)
            params = parse_form(await request.text())
            key = request.headers.get("Idempotency-Key")
            self.requests.append(Seen(request.method, request.path, params, key))
            if key in self.idempotent:
                return self.replay(key, request.path, params)
            if self.failures:
                status, body = self.failures.pop(0)
                return web.json_response(body, status=status)
            status, body = await create(params)
            if key and status < 500:
                self.idempotent[key] = ({"path": request.path, **params}, status, body)
            return web.json_response(body, status=status)
        return handle

    def replay(self, key: str, path: str, params: dict) -> web.Response:
        first, status, body = self.idempotent[key]
        if first != {"path": path, **params}:
            return web.json_response(error_body(
                "idempotency_error", "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to execute a different "
                "request."), status=400)
        return web.json_response(body, status=status, headers={"Idempotent-Replayed": "true"})

    async def create_customer(self, params: dict) -> tuple[int, dict]:
        self.customer_requested.set()
        if self.hold_customers is not None:
            await self.hold_customers.wait()
        customer = {"id": "cus_" + secrets.token_hex(7), "object": "customer", "created": int(time.time()),
                    "email": params.get("email"), "name": params.get("name"), "metadata": params.get("metadata", {}),
                    "livemode": False}
        self.customers[customer["id"]] = customer
        return 200, customer

    async def create_checkout_session(self, params: dict) -> tuple[int, dict]:
        if params.get("customer") not in self.customers:
            return 400, error_body("invalid_request_error", f"No such customer: '{params.get('customer')}'",
                                   "resource_missing", "customer")
        items = params.get("line_items") or []
        price = items[0].get("price") if items and isinstance(items[0], dict) else None
        if price not in self.prices:
            return 400, error_body("invalid_request_error", f"No such price: '{price}'", "resource_missing",
                                   "line_items[0][price]")
        if params.get("mode") != "subscription":
            return 400, error_body("invalid_request_error", "You must provide at least one recurring price in "
                                   "`subscription` mode when using prices.", param="mode")
        session_id = "cs_test_" + secrets.token_hex(12)
        session = {"id": session_id, "object": "checkout.session", "mode": "subscription", "status": "open",
                   "payment_status": "unpaid", "customer": params["customer"], "subscription": None,
                   "client_reference_id": params.get("client_reference_id"), "metadata": params.get("metadata", {}),
                   "success_url": params.get("success_url"), "cancel_url": params.get("cancel_url"),
                   "created": int(time.time()), "expires_at": int(time.time()) + 86400, "livemode": False,
                   "url": CHECKOUT_HOST + session_id}
        self.sessions[session_id] = {**session, "line_items": items,
                                     "subscription_data": params.get("subscription_data", {})}
        return 200, session

    async def create_portal_session(self, params: dict) -> tuple[int, dict]:
        if params.get("customer") not in self.customers:
            return 400, error_body("invalid_request_error", f"No such customer: '{params.get('customer')}'",
                                   "resource_missing", "customer")
        session_id = "bps_" + secrets.token_hex(12)
        return 200, {"id": session_id, "object": "billing_portal.session", "customer": params["customer"],
                     "return_url": params.get("return_url"), "created": int(time.time()), "livemode": False,
                     "url": PORTAL_HOST + "test_" + session_id}


# --- webhook events ---------------------------------------------------------------------------------

def event(kind: str, obj: dict, created: int | None = None, event_id: str | None = None) -> dict:
    return {"id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "api_version": "2025-03-31.basil",
            "created": int(time.time()) if created is None else created, "type": kind, "livemode": False,
            "pending_webhooks": 1, "data": {"object": obj}}


def checkout_completed(session_customer: str, org_id, plan: str, subscription: str, **extra) -> dict:
    return {"id": "cs_test_" + secrets.token_hex(8), "object": "checkout.session", "mode": "subscription",
            "status": "complete", "payment_status": "paid", "customer": session_customer,
            "subscription": subscription, "client_reference_id": str(org_id),
            "metadata": {"orgId": str(org_id), "planId": plan}, **extra}


def subscription(subscription_id: str, customer: str, status: str, price: str, org_id=None) -> dict:
    return {"id": subscription_id, "object": "subscription", "customer": customer, "status": status,
            "metadata": {"orgId": str(org_id)} if org_id else {},
            "items": {"object": "list", "data": [{"id": "si_" + secrets.token_hex(6), "object": "subscription_item",
                                                  "price": {"id": price, "object": "price"}, "quantity": 1}]}}


def failed_invoice(customer: str, subscription_id: str, next_attempt: int | None) -> dict:
    return {"id": "in_" + secrets.token_hex(8), "object": "invoice", "customer": customer, "status": "open",
            "attempt_count": 4 if next_attempt is None else 1, "next_payment_attempt": next_attempt,
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": subscription_id}}}


def signed(payload: dict | str, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and the Stripe-Signature header Stripe would send."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    stamp = int(time.time()) if timestamp is None else timestamp
    return body.encode(), stripe.WebhookSignature.generate_signature_header(body, secret, stamp)
