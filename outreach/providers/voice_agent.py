"""The voice agent (a Pipecat service): what each call needs, and each organization's defaults, pushed to it.

Every request is signed (runtime.agent_protocol) and carries the organization's id: the agent keeps one
configuration per organization and one per call, so a tenant's script never reaches another tenant's
calls (the original pushed one global config for everybody, unauthenticated). Failures raise
`errors.ProviderError` with `details["status"]` (None when the agent could not be reached) and
`details["details"]`, the agent's answer.
"""
from __future__ import annotations

import asyncio
import time
import urllib.parse

import aiohttp
import orjson

from outreach.runtime import agent_protocol, errors

CALLS_PATH = "/api/calls"
CONFIG_PATH = "/api/config"
STREAM_PATH = "/stream"
REQUEST_TIMEOUT = 10
DETAILS_MAX = 1000


class VoiceAgent:
    def __init__(self, base_url: str, secret: str, timeout: float = REQUEST_TIMEOUT, clock=time.time):
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.timeout = timeout
        self.clock = clock

    def stream_url(self) -> str:
        """The agent's media-stream WebSocket, where Twilio connects an answered call."""
        parts = urllib.parse.urlsplit(self.base_url)
        scheme = "ws" if parts.scheme == "http" else "wss"
        return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + STREAM_PATH, "", ""))

    async def prepare_call(self, config: dict) -> dict:
        """Hand the agent one call's script, objection handlers, voice and lead, keyed by the call log id."""
        return await self._post(CALLS_PATH, config)

    async def push_config(self, config: dict) -> dict:
        """Replace one organization's default script and voice settings on the agent."""
        return await self._post(CONFIG_PATH, config)

    async def _post(self, path: str, payload: dict) -> dict:
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json",
                   **agent_protocol.signed_headers(self.secret, int(self.clock()), body)}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                async with session.post(self.base_url + path, data=body, headers=headers) as response:
                    status, text = response.status, await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise errors.ProviderError(f"Voice agent unreachable: {reason}", status=None, details=reason) from exc
        if not 200 <= status < 300:
            raise errors.ProviderError(f"Voice agent answered {status}", status=status,
                                       details=text[:DETAILS_MAX])
        return parse_answer(text)


def parse_answer(text: str) -> dict:
    """The agent's JSON object; an empty or non-object answer is an empty object (2xx means accepted)."""
    try:
        answer = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}
