"""Clerk's Backend API: a user's email address, for a session token that carries none.

Clerk's default session token has no `email` claim; the original looked the signed-in user up with its server
SDK (`GET /v1/users/{id}` with the instance's secret key). This is that call over aiohttp. A failure raises
`errors.ProviderError` (a 502 at the HTTP edge) saying what Clerk answered.
"""
from __future__ import annotations

import asyncio
import urllib.parse

import aiohttp

from outreach.runtime import errors

DEFAULT_API_URL = "https://api.clerk.com"
REQUEST_TIMEOUT = 10


class ClerkUsers:
    def __init__(self, secret_key: str, base_url: str = DEFAULT_API_URL, timeout: float = REQUEST_TIMEOUT):
        self.secret_key = secret_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def email_of(self, user_id: str) -> str | None:
        """The user's primary email address (else the first one); None when Clerk knows no such user or address."""
        user = await self._get(f"/v1/users/{urllib.parse.quote(user_id, safe='')}")
        return primary_email(user) if user is not None else None

    async def _get(self, path: str) -> dict | None:
        headers = {"Authorization": f"Bearer {self.secret_key}", "Accept": "application/json"}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.get(self.base_url + path, headers=headers) as response:
                    if response.status == 404:
                        return None
                    if response.status != 200:
                        raise errors.ProviderError(f"Clerk answered {response.status}")
                    body = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise errors.ProviderError(f"Clerk unreachable: {reason}") from exc
        return body if isinstance(body, dict) else None


def primary_email(user: dict) -> str | None:
    addresses = [item for item in user.get("email_addresses") or [] if isinstance(item, dict)
                 and isinstance(item.get("email_address"), str) and item["email_address"]]
    primary = next((item for item in addresses if item.get("id") == user.get("primary_email_address_id")), None)
    chosen = primary or (addresses[0] if addresses else None)
    return chosen["email_address"] if chosen else None
