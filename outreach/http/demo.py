"""Public demo routes: which channels this deployment can use, and the landing page's demo email."""
from __future__ import annotations

import hashlib
import time
import uuid

from aiohttp import web

from outreach.http import channels, email, keys, params, schema, wire
from outreach.runtime import errors
from outreach.runtime.ports import OutboundEmail

DEMO_WINDOW_SECONDS = 3600
SANDBOX_SENDER = "Outreach Sandbox <sandbox@outreach.invalid>"
DEMO_SUBJECT = "Quick question for you"
DEMO_TEXT = ("Hi there,\n\nThis is the email a campaign sends when you try the demo: written for the lead, sent "
             "through the organization's own sender, counted against its plan, and tracked from delivery to "
             "reply.\n\nWould a short call this week to see it on your own leads be useful?\n\nBest regards")
DEMO_EMAIL = schema.Model("DemoEmail", [
    schema.Field("email", schema.Text(strip=True, max_length=channels.MAX_ADDRESS, pattern=channels.ADDRESS,
                                      format="email"),
                 required=True, empty=schema.never, message="Valid email is required"),
])


@params.answers(200, schema.reply("DemoStatus", {key: schema.Boolean()
                                                 for key in ("call", "telegram", "email", "sandbox")}))
async def demo_status(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    sandbox = settings.sandbox
    return wire.json_response({
        "call": sandbox or (settings.twilio_configured and bool(settings.voice_agent_url)),
        "telegram": sandbox or bool(settings.telegram_api_id),
        "email": sandbox or (settings.resend_configured and bool(settings.email_from)),
        "sandbox": sandbox,
    })


@params.accepts(body=DEMO_EMAIL)
@params.answers(200, schema.SUCCESS)
async def send_demo_email(request: web.Request) -> web.Response:
    """One demo email per address per hour across every API replica: the claim is a Redis SET NX EX,
    taken before sending (two concurrent requests cannot both send) and given back if the send fails."""
    address = (await params.body(request))["email"].lower()
    port, sender = demo_sender(request)
    redis = request.app[keys.REDIS]
    await count_demo_send(redis, request.remote or "unknown")
    claim = "demo:email:" + hashlib.sha256(address.encode()).hexdigest()
    if not await redis.set(claim, "1", nx=True, ex=DEMO_WINDOW_SECONDS):
        wait = await redis.ttl(claim)
        raise errors.RateLimited("Email already sent to this address. Try again later.",
                                 retry_after=wait if wait > 0 else DEMO_WINDOW_SECONDS)
    result = await email.send_through(port, OutboundEmail(sender, address, None, DEMO_SUBJECT, DEMO_TEXT),
                                      f"demo:{uuid.uuid4()}")
    if not result.ok:
        await redis.delete(claim)
        raise errors.ProviderError(f"Failed to send email: {result.error}")
    return wire.json_response({"success": True})


DEMO_PER_CLIENT_PER_HOUR = 5
DEMO_PER_DAY = 200  # the demo spends the deployment's sending quota and reputation: keep it small


async def count_demo_send(redis, client: str) -> None:
    """A public route: besides one email per address, at most a few per caller an hour and a cap a day."""
    day = int(time.time() // 86400)
    caller = "demo:client:" + hashlib.sha256(client.encode()).hexdigest()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(caller)
        pipe.expire(caller, DEMO_WINDOW_SECONDS, nx=True)
        pipe.incr(f"demo:day:{day}")
        pipe.expire(f"demo:day:{day}", 86400, nx=True)
        from_caller, _, today, _ = await pipe.execute()
    if from_caller > DEMO_PER_CLIENT_PER_HOUR:
        raise errors.RateLimited("Too many demo emails from this address. Try again later.",
                                 retry_after=DEMO_WINDOW_SECONDS)
    if today > DEMO_PER_DAY:
        raise errors.RateLimited("The demo has reached its daily limit. Try again tomorrow.",
                                 retry_after=86400 - int(time.time() % 86400))


def demo_sender(request: web.Request) -> tuple[object, str]:
    settings = request.app[keys.SETTINGS]
    port = email.email_port(request)
    sender = settings.email_from or (SANDBOX_SENDER if settings.sandbox else None)
    if not sender:
        raise errors.NotConfigured("Demo email sender is not configured: set OUTREACH_EMAIL_FROM")
    return port, sender


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/demo/status", demo_status)
    router.add_post("/api/demo/email", send_demo_email)
