"""The app factory and the route table."""
from __future__ import annotations

import dataclasses
import weakref

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from outreach.http import (
    analytics, api_keys, auth, billing, calls, campaigns, channels, clerk_webhook, demo, email, execution, keys, leads,
    liqpay_webhook, live, numbers, observability, onboarding, openapi, ops, progress, resend_webhook, scripts,
    sender_proof, stripe_webhook, telegram, twilio_webhook, voice, voice_agent_webhook,
)
from outreach.http import suppressions, unsubscribe
from outreach.http.errors import error_middleware
from outreach.http.observability import METRICS, HttpMetrics, observe_middleware
from outreach.runtime.config import Settings

RESOURCE_MODULES = (
    ops, observability, openapi, live, demo, campaigns, execution, progress, leads, api_keys, channels, onboarding,
    scripts, voice, calls, email, numbers, telegram, billing, stripe_webhook, liqpay_webhook, resend_webhook, analytics,
    twilio_webhook, voice_agent_webhook, clerk_webhook, sender_proof, suppressions, unsubscribe,
)


@dataclasses.dataclass
class Deps:
    """What the handlers need, built and closed by the caller (service.py, or the tests)."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    runtime: object = None  # actors.remote.RayRuntime; None where this process runs no campaigns
    stripe: object = None  # providers.stripe.StripeBilling; None when Stripe is not configured
    liqpay: object = None  # providers.liqpay.LiqPay; None when LiqPay is not configured
    email: object = None  # runtime.ports.EmailSender (Resend, or the sandbox); None when email is not configured
    drafter: object = None  # providers.openrouter.OpenRouterDrafter; None without OPENROUTER_API_KEY
    twilio: object = None  # providers.twilio.Twilio; None when Twilio is not configured
    voice_agent: object = None  # providers.voice_agent.VoiceAgent; None without VOICE_AGENT_URL and _SECRET
    clerk_users: object = None  # providers.clerk.ClerkUsers; None without CLERK_SECRET_KEY
    demo_telegram: object = None  # sends the public demo message (actors.remote.DemoTelegram, or the sandbox)
    sender_domains: object = None  # providers.resend_domains.ResendDomains; None without Resend (or in sandbox)


def build_app(settings: Settings, deps: Deps) -> web.Application:
    app = web.Application(middlewares=[observe_middleware, error_middleware, auth.auth_middleware],
                          client_max_size=2 * 1024 * 1024)
    app[METRICS] = HttpMetrics()
    app[keys.SETTINGS] = settings
    app[keys.DB] = deps.pool
    app[keys.REDIS] = deps.redis
    app[keys.AUTHENTICATOR] = auth.Authenticator(settings, deps.pool)
    app[keys.RUNTIME] = deps.runtime
    app[keys.HUB] = progress.StreamHub(deps.redis)
    app[keys.SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(progress.close_sockets)
    app[keys.STRIPE] = deps.stripe
    app[keys.LIQPAY] = deps.liqpay
    app[keys.EMAIL] = deps.email
    app[keys.DRAFTER] = deps.drafter
    app[keys.TWILIO] = deps.twilio
    app[keys.VOICE_AGENT] = deps.voice_agent
    app[keys.CLERK_USERS] = deps.clerk_users
    app[keys.DEMO_TELEGRAM] = deps.demo_telegram
    app[keys.SENDER_DOMAINS] = deps.sender_domains
    app.on_startup.append(openapi.publish)
    app.on_cleanup.append(close_resources)
    setup_routes(app)
    return app


def setup_routes(app: web.Application) -> None:
    for module in RESOURCE_MODULES:
        module.add_routes(app.router)


async def close_resources(app: web.Application) -> None:
    await app[keys.HUB].close()
    await app[keys.AUTHENTICATOR].close()
