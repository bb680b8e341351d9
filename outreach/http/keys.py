"""Typed application keys: what the app holds for its handlers."""
from __future__ import annotations

import weakref

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from outreach.runtime import errors
from outreach.runtime.config import Settings
from outreach.runtime.models import Principal

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)
AUTHENTICATOR = web.AppKey("authenticator", object)
RUNTIME = web.AppKey("runtime", object)  # actors.remote.RayRuntime, or None where no Ray runs
HUB = web.AppKey("hub", object)  # http.progress.StreamHub
OPENAPI = web.AppKey("openapi", dict)  # the OpenAPI document, built at start-up (http.openapi)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)  # open progress feeds, closed on shutdown
# Provider ports, each None where that provider is not configured (handlers never import providers).
EMAIL = web.AppKey("email", object)  # runtime.ports.EmailSender: Resend, or the sandbox
DRAFTER = web.AppKey("drafter", object)  # providers.openrouter.OpenRouterDrafter
STRIPE = web.AppKey("stripe", object)  # providers.stripe.StripeBilling
LIQPAY = web.AppKey("liqpay", object)  # providers.liqpay.LiqPay
TWILIO = web.AppKey("twilio", object)  # providers.twilio.Twilio
VOICE_AGENT = web.AppKey("voice_agent", object)  # providers.voice_agent.VoiceAgent
CLERK_USERS = web.AppKey("clerk_users", object)  # providers.clerk.ClerkUsers (CLERK_SECRET_KEY)
DEMO_TELEGRAM = web.AppKey("demo_telegram", object)  # runtime.ports.TelegramSender: the demo account's actor, or sandbox
SENDER_DOMAINS = web.AppKey("sender_domains", object)  # providers.resend_domains.ResendDomains



def required(request: web.Request, key: web.AppKey, not_configured: str):
    """The port under `key`, or a 503 whose message names what to set."""
    port = request.app.get(key)
    if port is None:
        raise errors.NotConfigured(not_configured)
    return port


REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
