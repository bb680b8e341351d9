"""LiqPay: signed checkout data for a monthly UAH subscription, and verification of its callbacks.

data = base64(JSON of the params); signature = base64(SHA-1(private key + data + private key)).
LiqPay has no SDK worth the name (its Python package is synchronous); this is the whole protocol.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import re
import uuid

from outreach.runtime import errors, policy

CHECKOUT_URL = "https://www.liqpay.ua/api/3/checkout"
CURRENCY = "UAH"
# The order id names the organization that pays (never a user) and the plan: liqpay_<org uuid hex>_<plan>_<ms>.
ORDER_ID = re.compile(r"liqpay_([0-9a-f]{32})_(%s)_(\d{1,15})" % "|".join(policy.PAID_PLANS))


class LiqPay:
    def __init__(self, public_key: str, private_key: str):
        if not public_key or not private_key:
            # An empty private key makes every signature forgeable: never build one without both keys.
            raise errors.NotConfigured("LiqPay is not configured. Set LIQPAY_PUBLIC_KEY and LIQPAY_PRIVATE_KEY.")
        self.public_key = public_key
        self.private_key = private_key

    @property
    def sandbox(self) -> bool:
        """LiqPay's sandbox keys start with `sandbox_`; their successful payments have the status `sandbox`."""
        return self.public_key.startswith("sandbox_")

    def sign(self, data: str) -> str:
        digest = hashlib.sha1((self.private_key + data + self.private_key).encode()).digest()
        return base64.b64encode(digest).decode()

    def encode(self, params: dict) -> tuple[str, str]:
        data = base64.b64encode(json.dumps(params, ensure_ascii=False).encode()).decode()
        return data, self.sign(data)

    def subscription(self, order_id: str, amount: int, description: str, result_url: str, server_url: str,
                     now: datetime.datetime) -> tuple[str, str]:
        """(data, signature) for a monthly subscription starting today."""
        return self.encode({
            "public_key": self.public_key,
            "version": 3,
            "action": "subscribe",
            "amount": amount,
            "currency": CURRENCY,
            "description": description,
            "order_id": order_id,
            "subscribe_date_start": now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d 00:00:00"),
            "subscribe_periodicity": "month",
            "result_url": result_url,
            "server_url": server_url,
            "language": "uk",
        })

    def verify_callback(self, data: str, signature: str) -> dict:
        """The decoded callback, once its signature matches (compared in constant time)."""
        if not hmac.compare_digest(self.sign(data).encode(), signature.encode()):
            raise errors.Invalid("Invalid signature")
        try:
            payload = json.loads(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise errors.Invalid("Invalid data") from exc
        if not isinstance(payload, dict):
            raise errors.Invalid("Invalid data")
        return payload

    @staticmethod
    def order_id(org_id, plan: str, now: datetime.datetime) -> str:
        return f"liqpay_{uuid.UUID(str(org_id)).hex}_{plan}_{int(now.timestamp() * 1000)}"

    @staticmethod
    def parse_order_id(value) -> tuple[uuid.UUID, str]:
        """(org id, plan) of an order id made by `order_id`."""
        match = ORDER_ID.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise errors.Invalid("Invalid order_id")
        return uuid.UUID(match.group(1)), match.group(2)
