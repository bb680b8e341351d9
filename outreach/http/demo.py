"""Public demo routes: which channels this deployment can use, and the landing page's demo email and message."""
from __future__ import annotations

import hashlib
import time
import uuid

from aiohttp import web

from outreach.http import channels, email, keys, params, validation, wire
from outreach.runtime import errors, optout
from outreach.runtime.ports import OutboundEmail

DEMO_WINDOW_SECONDS = 3600
# The landing page tells a rate limit from other errors by the words "rate", "limit" or "already" in the text.
ALREADY_SENT = "Email already sent to this address (rate limit: one an hour). Try again later."
SANDBOX_SENDER = "Outreach Sandbox <sandbox@outreach.invalid>"
DEMO_SUBJECT = "Quick question for you"
DEMO_TEXT = ("Hi there,\n\nThis is the email a campaign sends when you try the demo: written for the lead, sent "
             "through the organization's own sender, counted against its plan, and tracked from delivery to "
             "reply.\n\nWould a short call this week to see it on your own leads be useful?\n\nBest regards")
class DemoEmail(validation.Model):
    email: validation.Text(strip=True, max_length=channels.MAX_ADDRESS, pattern=channels.ADDRESS, format="email")


class DemoTelegram(validation.Model):
    username: validation.Text(strip=True, max_length=200)


DEMO_MESSAGE = ("Hi! This is the message a campaign sends when you try the demo: written for the lead, sent from "
                "a real Telegram account, paced and within its daily limit. Worth a short call this week?")
TELEGRAM_NOT_CONFIGURED = ("Demo Telegram is not configured: set OUTREACH_DEMO_TELEGRAM_ACCOUNT (the id of an "
                           "account added with `outreach telegram add`), or run with OUTREACH_SANDBOX=1")
# What the demo account says when it cannot send now (daily limit, pacing, flood wait): the visitor waits.
ACCOUNT_WAITS = ("account_unavailable", "flood_wait", "peer_flood")


class DemoStatus(validation.Reply):
    call: bool
    telegram: bool
    email: bool
    sandbox: bool


@params.answers(200, DemoStatus)
async def demo_status(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    sandbox = settings.sandbox
    return wire.json_response({
        "call": sandbox or (settings.twilio_configured and bool(settings.voice_agent_url)),
        "telegram": sandbox or bool(settings.telegram_api_id),
        "email": sandbox or (settings.resend_configured and bool(settings.email_from)),
        "sandbox": sandbox,
    })


@params.accepts(body=DemoEmail)
@params.answers(200, validation.Success)
async def send_demo_email(request: web.Request) -> web.Response:
    """One demo email per address per hour across every API replica: the claim is a Redis SET NX EX,
    taken before sending (two concurrent requests cannot both send) and given back if the send fails."""
    address = (await params.body(request))["email"].lower()
    port, sender = demo_sender(request)
    redis = request.app[keys.REDIS]
    await count_caller(redis, request.remote or "unknown")
    claim = "demo:email:" + hashlib.sha256(address.encode()).hexdigest()
    if not await redis.set(claim, "1", nx=True, ex=DEMO_WINDOW_SECONDS):
        wait = await redis.ttl(claim)
        raise errors.RateLimited(ALREADY_SENT,
                                 retry_after=wait if wait > 0 else DEMO_WINDOW_SECONDS)
    try:  # only a request that passed both checks spends the day's budget, so one caller cannot spend it all
        await count_day(redis, request.app[keys.SETTINGS].demo_emails_per_day)
    except errors.RateLimited:
        await redis.delete(claim)
        raise
    result = await email.send_through(port, OutboundEmail(sender, address, None, DEMO_SUBJECT, DEMO_TEXT),
                                      f"demo:{uuid.uuid4()}")
    if not result.ok:
        await redis.delete(claim)
        raise errors.ProviderError(f"Failed to send email: {result.error}")
    return wire.json_response({"success": True})


DEMO_PER_CLIENT_PER_HOUR = 5


async def count_caller(redis, client: str) -> None:
    """A public route: besides one email per address, at most a few per caller an hour."""
    caller = "demo:client:" + hashlib.sha256(client.encode()).hexdigest()
    if await count_in_window(redis, caller, DEMO_WINDOW_SECONDS) > DEMO_PER_CLIENT_PER_HOUR:
        raise errors.RateLimited("Too many demo emails from this address (rate limit). Try again later.",
                                 retry_after=DEMO_WINDOW_SECONDS)


async def count_day(redis, per_day: int) -> None:
    """The demo spends the deployment's sending quota and reputation: a cap a day (OUTREACH_DEMO_EMAILS_PER_DAY)."""
    if await count_in_window(redis, f"demo:day:{int(time.time() // 86400)}", 86400) > per_day:
        raise errors.RateLimited("The demo has reached its daily rate limit. Try again tomorrow.",
                                 retry_after=86400 - int(time.time() % 86400))


async def count_in_window(redis, key: str, seconds: int) -> int:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, seconds, nx=True)
        count, _ = await pipe.execute()
    return count


def demo_sender(request: web.Request) -> tuple[object, str]:
    settings = request.app[keys.SETTINGS]
    port = email.email_port(request)
    sender = settings.email_from or (SANDBOX_SENDER if settings.sandbox else None)
    if not sender:
        raise errors.NotConfigured("Demo email sender is not configured: set OUTREACH_EMAIL_FROM")
    return port, sender


@params.accepts(body=DemoTelegram)
@params.answers(200, validation.Success)
async def send_demo_telegram(request: web.Request) -> web.Response:
    """The demo message, once per username an hour across replicas (a Redis claim taken before sending, given
    back if nothing was sent), a few per caller an hour; the account's own daily limit and pacing apply."""
    username = demo_username((await params.body(request))["username"])
    port = keys.required(request, keys.DEMO_TELEGRAM, TELEGRAM_NOT_CONFIGURED)
    redis = request.app[keys.REDIS]
    caller = "demo:telegram-client:" + hashlib.sha256((request.remote or "unknown").encode()).hexdigest()
    if await count_in_window(redis, caller, DEMO_WINDOW_SECONDS) > DEMO_PER_CLIENT_PER_HOUR:
        raise errors.RateLimited("Too many demo messages from this address (rate limit). Try again later.",
                                 retry_after=DEMO_WINDOW_SECONDS)
    claim = "demo:telegram:" + hashlib.sha256(username.encode()).hexdigest()
    if not await redis.set(claim, "1", nx=True, ex=DEMO_WINDOW_SECONDS):
        raise errors.RateLimited("Demo message already sent to this username (rate limit: one an hour). "
                                 "Try again later.", retry_after=DEMO_WINDOW_SECONDS)
    result = await port.send_message(username, DEMO_MESSAGE)
    if result.outcome != "sent" and result.outcome != "unknown":  # unknown: it may have gone, keep the claim
        await redis.delete(claim)
    if result.outcome in ACCOUNT_WAITS:
        raise errors.RateLimited(f"The demo Telegram account is rate limited: {result.error}. Try again later.",
                                 retry_after=result.retry_after or DEMO_WINDOW_SECONDS)
    if not result.ok:
        raise errors.ProviderError(f"Failed to send: {result.error or result.outcome}")
    return wire.json_response({"success": True})


def demo_username(raw: str) -> str:
    """`@Name` -> `name`, as the contract normalises it; a Telegram username or the contract's 400."""
    try:
        return optout.normalise_username(raw)
    except errors.Invalid:
        raise errors.Invalid("Invalid username") from None


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/demo/status", demo_status)
    router.add_post("/api/demo/email", send_demo_email)
    router.add_post("/api/demo/telegram", send_demo_telegram)
