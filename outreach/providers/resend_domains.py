"""Resend's domains API (`GET /domains`): which sending domains the deployment's account has verified.

One of the two proofs of a sender address (http/sender_proof.py): an organization's address at a domain
verified at Resend may be sent from. Any answer but a well-formed 200 is `errors.ProviderError` (502).
"""
from __future__ import annotations

import asyncio

import aiohttp

from outreach.runtime import errors

USER_AGENT = "outreach-runtime"


class ResendDomains:
    def __init__(self, api_key: str, base_url: str = "https://api.resend.com", timeout: float = 10):
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def verified_domains(self) -> set[str]:
        """The names (lower case) of the account's domains whose status is `verified`."""
        document = await self._get("/domains")
        domains = document.get("data") if isinstance(document, dict) else None
        if not isinstance(domains, list):
            raise errors.ProviderError("Resend answered the domain list in an unknown shape")
        return {str(domain["name"]).lower() for domain in domains
                if isinstance(domain, dict) and domain.get("status") == "verified" and domain.get("name")}

    async def _get(self, path: str):
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self.api_key}", "User-Agent": USER_AGENT}
        try:
            async with self._session.get(self.base_url + path, headers=headers) as response:
                if response.status != 200:
                    raise errors.ProviderError(f"Resend refused the domain list ({response.status})")
                return await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise errors.ProviderError(f"Resend is unreachable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
