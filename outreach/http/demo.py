"""Public demo routes: which channels this deployment can use, and whether they are simulated."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, wire


async def demo_status(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    sandbox = settings.sandbox
    return wire.json_response({
        "call": sandbox or (settings.twilio_configured and bool(settings.voice_agent_url)),
        "telegram": sandbox or bool(settings.telegram_api_id),
        "email": sandbox or settings.resend_configured,
        "sandbox": sandbox,
    })


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/demo/status", demo_status)
