"""A local server speaking Resend's `POST /emails` wire format.

It keeps Resend's idempotency rules (the same key and body return the first id and send nothing; the
same key with another body is a 409), answers errors as `{"statusCode", "name", "message"}`, and can be
scripted to fail (`queue`) or to hold requests until released (`hold`), for the client's timeout.
With `faults`, it is a flaky Resend: random 500s, 429s with Retry-After, connections reset after the
email was accepted, and answers that hang past the client's timeout (also after accepting it).
`requests` notes when each request arrived, so a test can measure the rate the service saw.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import time
import uuid

from aiohttp import web

from tests.fakes.server import LocalServer

ADDRESS = re.compile(r"^(?:[^<>]*<)?[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+>?$")


@dataclasses.dataclass
class Reply:
    status: int
    body: dict | str
    headers: dict = dataclasses.field(default_factory=dict)


def error(status: int, name: str, message: str, retry_after: int | None = None) -> Reply:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    return Reply(status, {"statusCode": status, "name": name, "message": message}, headers)


def invalid_recipient() -> Reply:
    return error(422, "validation_error", "Invalid `to` field. The email address needs to follow the "
                                          "`email@example.com` or `Name <email@example.com>` format.")


def rate_limited(retry_after: int = 2) -> Reply:
    return error(429, "rate_limit_exceeded", "Too many requests. You can only make 2 requests per second.",
                 retry_after)


def server_error() -> Reply:
    return error(500, "internal_server_error", "An unexpected error occurred.")


@dataclasses.dataclass
class Faults:
    """Shares of requests that fail each way (drawn from a seeded generator, so a run can be repeated)."""

    server_error: float = 0.0
    rate_limited: float = 0.0
    reset: float = 0.0  # the email is accepted, then the connection is dropped before the answer
    hang: float = 0.0  # the email is accepted, then the answer waits `hang_seconds`
    retry_after: int = 1
    hang_seconds: float = 5.0
    seed: int = 13
    limit: int | None = None  # inject at most this many, then answer normally

    def draw(self, rng: random.Random, injected: int) -> str | None:
        if self.limit is not None and injected >= self.limit:
            return None
        roll = rng.random()
        for name in ("server_error", "rate_limited", "reset", "hang"):
            share = getattr(self, name)
            if roll < share:
                return name
            roll -= share
        return None


class FakeResend(LocalServer):
    def __init__(self, api_key: str = "re_test_key", faults: Faults | None = None):
        super().__init__()
        self.api_key = api_key
        self.faults = faults
        self.rng = random.Random(faults.seed if faults else 0)
        self.injected: list[str] = []  # the faults injected, in order
        self.requests: list[dict] = []  # every request that reached /emails
        self.sent: list[dict] = []  # the emails actually sent: one per distinct idempotency key
        self.replies: list[Reply] = []
        self.keys: dict[str, tuple[str, str]] = {}  # idempotency key -> (body fingerprint, email id)
        self._held = 0
        self._release = asyncio.Event()
        self.app.router.add_post("/emails", self.emails)
        self.domains: dict[str, str] = {}  # name -> status ("verified", "pending", ...), for GET /domains
        self.app.router.add_get("/domains", self.list_domains)

    def queue(self, *replies: Reply) -> None:
        """The next requests get these answers (after authentication), in order, and send nothing."""
        self.replies.extend(replies)

    def hold(self, count: int = 1) -> None:
        """The next `count` requests wait until `release()` (or the client gives up)."""
        self._held += count
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    async def list_domains(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return respond(error(401, "missing_api_key", "Missing API key in the authorization header."))
        data = [{"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), "name": name, "status": status,
                 "created_at": "2026-01-01T00:00:00.000Z", "region": "us-east-1"}
                for name, status in self.domains.items()]
        return web.json_response({"data": data})

    async def emails(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return respond(error(401, "missing_api_key", "Missing API key in the authorization header."))
        raw = await request.text()
        key = request.headers.get("Idempotency-Key")
        self.requests.append({"headers": dict(request.headers), "body": raw, "key": key, "at": time.monotonic()})
        fault = self.faults.draw(self.rng, len(self.injected)) if self.faults else None
        if fault is not None:
            self.injected.append(fault)
            return await self.inject(fault, request, raw, key)
        if self._held:
            self._held -= 1
            await self._release.wait()
        if self.replies:
            return respond(self.replies.pop(0))
        try:
            body = json.loads(raw)
        except ValueError:
            return respond(error(400, "invalid_parameter", "The body is not JSON."))
        return respond(self.accept(body, key))

    async def inject(self, fault: str, request: web.Request, raw: str, key: str | None) -> web.Response:
        if fault == "server_error":
            return respond(server_error())
        if fault == "rate_limited":
            return respond(rate_limited(self.faults.retry_after))
        reply = self.accept(json.loads(raw), key)  # Resend did the work; only its answer is lost or late
        if fault == "reset":
            request.transport.abort()
            raise ConnectionResetError("fault injected: connection reset")
        await asyncio.sleep(self.faults.hang_seconds)
        return respond(reply)

    def accept(self, body: dict, key: str | None) -> Reply:
        missing = [field for field in ("from", "to", "subject") if not body.get(field)]
        if missing:
            return error(422, "missing_required_field", f"Missing `{missing[0]}` field.")
        if not all(ADDRESS.match(address) for address in body["to"]):
            return invalid_recipient()
        fingerprint = json.dumps(body, sort_keys=True)
        if key is not None and key in self.keys:
            seen, email_id = self.keys[key]
            if seen != fingerprint:
                return error(409, "invalid_idempotent_request",
                             "Same idempotency key used with a different request payload.")
            return Reply(200, {"id": email_id})
        email_id = str(uuid.uuid4())
        if key is not None:
            self.keys[key] = (fingerprint, email_id)
        self.sent.append({"id": email_id, "key": key, **body})
        return Reply(200, {"id": email_id})


def respond(reply: Reply) -> web.Response:
    if isinstance(reply.body, str):
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers, content_type="text/html")
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)
