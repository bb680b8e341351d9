"""A local server speaking OpenRouter's chat-completions wire format, answering from a script of replies."""
from __future__ import annotations

import asyncio
import dataclasses
import json

from aiohttp import web

from tests.fakes.server import LocalServer


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: dict | str | None = None
    headers: dict = dataclasses.field(default_factory=dict)
    delay: float = 0.0


def completion(content: str | None, model: str = "google/gemini-2.0-flash-001") -> Reply:
    """A normal completion whose choices[0].message.content is `content`."""
    return Reply(body={
        "id": "gen-fake-1", "object": "chat.completion", "model": model, "provider": "Google",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 60, "total_tokens": 180},
    })


def email_completion(subject: str | None, body: str, fenced: bool = False) -> Reply:
    document = json.dumps({"subject": subject, "body": body} if subject is not None else {"body": body})
    return completion(f"```json\n{document}\n```" if fenced else document)


def error_reply(status: int, message: str, retry_after: int | None = None) -> Reply:
    """OpenRouter's error body with the HTTP status equal to the code."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Reply(status=status, body={"error": {"code": status, "message": message}}, headers=headers)


def error_in_200(code: int, message: str) -> Reply:
    """An error during generation: HTTP 200, but an `error` object in the body."""
    return Reply(status=200, body={"id": "gen-fake-2", "error": {"code": code, "message": message}})


def slow(reply: Reply, delay: float) -> Reply:
    return dataclasses.replace(reply, delay=delay)


class FakeOpenRouter(LocalServer):
    def __init__(self, api_key: str = "sk-or-test"):
        super().__init__()
        self.api_key = api_key
        self.requests: list[dict] = []
        self.replies: list[Reply] = []
        self.app.router.add_post("/api/v1/chat/completions", self.completions)

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def completions(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"code": 401, "message": "No auth credentials found"}}, status=401)
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "json": body})
        if not body.get("model") or not isinstance(body.get("messages"), list):
            return web.json_response({"error": {"code": 400, "message": "model and messages are required"}},
                                     status=400)
        reply = self.replies.pop(0) if self.replies else error_reply(500, "fake: no reply queued")
        if reply.delay:
            await asyncio.sleep(reply.delay)  # a slow upstream, for the client's timeout
        return self.respond(reply)

    @staticmethod
    def respond(reply: Reply) -> web.Response:
        if isinstance(reply.body, str):
            return web.Response(status=reply.status, text=reply.body, headers=reply.headers,
                                content_type="text/html")
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)
