"""A local server playing the voice agent's HTTP side: per-call configs (POST /api/calls) and per-organization
configs (POST /api/config), both refused unless signed. It also signs end-of-call reports the way the agent
does, for tests to post to our webhook.

The signature is computed here independently of outreach.runtime.agent_protocol, so a change there that
breaks the agreed scheme fails the tests.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from aiohttp import web

from tests.fakes.server import LocalServer

SECRET = "voice-agent-test-secret"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class FakeVoiceAgent(LocalServer):
    def __init__(self, secret: str = SECRET):
        super().__init__()
        self.secret = secret
        self.calls: dict[str, dict] = {}  # callLogId -> the call's config
        self.configs: dict[str, dict] = {}  # orgId -> the org's config
        self.requests: list[dict] = []
        self.refusals: list[tuple[int, str]] = []
        self.app.router.add_post("/api/calls", self.prepare_call)
        self.app.router.add_post("/api/config", self.push_config)

    def refuse_next(self, status: int, text: str) -> None:
        self.refusals.append((status, text))

    def signed_report(self, report: dict, *, timestamp: int | None = None, secret: str | None = None):
        """(body, headers) of an end-of-call report as the agent posts it."""
        body = json.dumps(report).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return body, {"Content-Type": "application/json", "X-Outreach-Timestamp": stamp,
                      "X-Outreach-Signature": signature(secret or self.secret, stamp, body)}

    async def read_signed(self, request: web.Request) -> dict | None:
        body = await request.read()
        stamp = request.headers.get("X-Outreach-Timestamp", "")
        given = request.headers.get("X-Outreach-Signature", "")
        fresh = stamp.isdigit() and abs(time.time() - int(stamp)) <= 300
        if not fresh or not hmac.compare_digest(signature(self.secret, stamp, body), given):
            return None
        payload = json.loads(body)
        self.requests.append({"path": request.path, "json": payload})
        return payload

    async def prepare_call(self, request: web.Request) -> web.Response:
        payload, refusal = await self.accept(request)
        if refusal is not None:
            return refusal
        self.calls[payload["callLogId"]] = payload
        return web.json_response({"success": True, "callLogId": payload["callLogId"]})

    async def push_config(self, request: web.Request) -> web.Response:
        payload, refusal = await self.accept(request)
        if refusal is not None:
            return refusal
        self.configs[payload["orgId"]] = payload
        return web.json_response({"success": True, "config": payload})

    async def accept(self, request: web.Request):
        """(payload, None) for a signed request the script does not refuse; else (None, the refusal)."""
        payload = await self.read_signed(request)
        if payload is None:
            return None, web.json_response({"error": "invalid signature"}, status=401)
        if self.refusals:
            status, text = self.refusals.pop(0)
            return None, web.Response(status=status, text=text)
        return payload, None
