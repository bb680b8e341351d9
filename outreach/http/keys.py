"""Typed application keys: what the app holds for its handlers."""
from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from outreach.runtime.config import Settings
from outreach.runtime.models import Principal

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)
AUTHENTICATOR = web.AppKey("authenticator", object)
RUNTIME = web.AppKey("runtime", object)  # actors.remote.RayRuntime, or None where no Ray runs
HUB = web.AppKey("hub", object)  # http.progress.StreamHub

REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
