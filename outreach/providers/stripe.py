"""Stripe: customers, subscription Checkout and billing-portal sessions, and webhook verification.

The official SDK, asynchronous over aiohttp, through a StripeClient of our own (never the global
`stripe.api_key`). Every SDK error is raised as `errors.ProviderError` (a 502 at the HTTP edge); a
webhook whose signature or timestamp does not verify is `errors.Invalid("Invalid signature")`.
"""
from __future__ import annotations

import json
import logging
import time

import aiohttp
import stripe

from outreach.runtime import errors

log = logging.getLogger(__name__)
WEBHOOK_TOLERANCE_SECONDS = 300


class StripeBilling:
    def __init__(self, secret_key: str, webhook_secret: str | None = None, base_url: str | None = None,
                 max_network_retries: int = 2, timeout: float = 20):
        self.http_client = stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=timeout))
        # Retries reuse the idempotency key, so a retried create never makes a second object.
        self.client = stripe.StripeClient(secret_key, base_addresses={"api": base_url} if base_url else None,
                                          max_network_retries=max_network_retries, http_client=self.http_client)
        self.webhook_secret = webhook_secret

    async def create_customer(self, org_id: str, email: str | None, name: str | None) -> str:
        params = {"metadata": {"orgId": org_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        customer = await self._call(self.client.v1.customers.create_async, params,
                                    {"idempotency_key": f"customer-{org_id}"})
        return customer.id

    async def create_checkout(self, customer: str, price: str, success_url: str, cancel_url: str,
                              metadata: dict, idempotency_key: str) -> str:
        params = {
            "customer": customer,
            "mode": "subscription",
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": metadata["orgId"],
            "metadata": metadata,
            # Subscription events then say whose subscription it is, too.
            "subscription_data": {"metadata": metadata},
        }
        session = await self._call(self.client.v1.checkout.sessions.create_async, params,
                                   {"idempotency_key": idempotency_key})
        return session.url

    async def create_portal(self, customer: str, return_url: str) -> str:
        session = await self._call(self.client.v1.billing_portal.sessions.create_async,
                                   {"customer": customer, "return_url": return_url}, {})
        return session.url

    def verify_event(self, payload: bytes, signature: str, now: float | None = None) -> dict:
        """The event, once its signature is verified with the webhook secret and its timestamp is within 300 s
        of now, either way: the SDK refuses only old ones, and a future stamp would outlive the replay window."""
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(text, signature, self.webhook_secret,
                                                  WEBHOOK_TOLERANCE_SECONDS)
            refuse_future(signature, time.time() if now is None else now)
            event = json.loads(text)
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            raise errors.Invalid("Invalid signature") from exc
        except ValueError as exc:
            raise errors.Invalid("Invalid payload") from exc
        if not isinstance(event, dict) or not all(isinstance(event.get(key), str) for key in ("id", "type")):
            raise errors.Invalid("Invalid payload")
        return event

    async def close(self) -> None:
        await self.http_client.close_async()

    @staticmethod
    async def _call(method, params: dict, options: dict):
        try:
            return await method(params, options)
        except stripe.StripeError as exc:
            log.warning("Stripe call failed: %s: %s", type(exc).__name__, exc.user_message or exc)
            raise errors.ProviderError(describe_error(exc)) from exc


def refuse_future(signature: str, now: float) -> None:
    """The header's `t=` (already verified, so well formed) no further ahead than the tolerance."""
    stamps = [int(value) for key, _, value in (part.partition("=") for part in signature.split(",")) if key == "t"]
    if not stamps or stamps[0] > now + WEBHOOK_TOLERANCE_SECONDS:
        raise stripe.SignatureVerificationError("Timestamp is in the future", signature, "")


def describe_error(exc: stripe.StripeError) -> str:
    """What the caller may see: Stripe's own message, except where it would echo (part of) the key."""
    if isinstance(exc, stripe.AuthenticationError):
        return "Stripe rejected the API key. Check STRIPE_SECRET_KEY."
    if isinstance(exc, stripe.APIConnectionError):
        return "Stripe is unreachable. Try again later."
    return f"Stripe error: {exc.user_message or 'the request failed'}"
