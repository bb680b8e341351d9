"""Authentication: Clerk session JWTs (RS256, JWKS) and `tp_live_` API keys, resolved to one organization."""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import jwt
from aiohttp import web

from outreach.http import keys
from outreach.runtime import errors
from outreach.runtime.config import Settings
from outreach.runtime.models import Principal
from outreach.storage import api_keys, db, orgs

log = logging.getLogger(__name__)
LEEWAY_SECONDS = 5
JWKS_MIN_REFRESH_SECONDS = 10
PROTECTED_PREFIX = "/api/dashboard"


class ClerkKeys:
    """The JWKS, fetched with aiohttp, cached, and refetched once when a token names an unknown `kid`."""

    def __init__(self, jwks_url: str):
        self.jwks_url = jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def key_for(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise errors.Unauthorized()
        return key

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < JWKS_MIN_REFRESH_SECONDS and self._keys:
                return
            try:
                self._keys = await self._fetch()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, jwt.PyJWTError) as exc:
                log.warning("cannot fetch the Clerk JWKS from %s: %s", self.jwks_url, exc)
                raise errors.Unauthorized() from exc
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        async with self._session.get(self.jwks_url) as response:
            response.raise_for_status()
            document = await response.json(content_type=None)
        key_set = jwt.PyJWKSet.from_dict(document)
        return {key.key_id: key for key in key_set.keys if key.key_id}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Authenticator:
    def __init__(self, settings: Settings, pool):
        self.settings = settings
        self.pool = pool
        self.clerk = ClerkKeys(settings.clerk_jwks_url) if settings.clerk_jwks_url else None
        self._orgs: dict[tuple, object] = {}  # (user, org claim) -> org id, to spare a query per request

    async def authenticate(self, request: web.Request) -> Principal:
        token = bearer_token(request) or request.cookies.get("__session") or websocket_token(request) or ""
        if not token:
            raise errors.Unauthorized()
        if api_keys.looks_like_key(token):
            return await self.principal_for_key(token)
        claims = await self.verify_session(token)
        return await self.principal_for_session(claims)

    async def principal_for_key(self, key: str) -> Principal:
        async with db.connection(self.pool) as conn:
            org_id = await api_keys.org_for_key(conn, key)
        if org_id is None:
            raise errors.Unauthorized()
        return Principal(org_id=org_id, via="api_key")

    async def verify_session(self, token: str) -> dict:
        if self.clerk is None:
            raise errors.Unauthorized()
        try:
            header = jwt.get_unverified_header(token)
            key = await self.clerk.key_for(header.get("kid") or "")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                leeway=LEEWAY_SECONDS,
                issuer=self.settings.clerk_issuer,
                options={"require": ["exp", "sub"], "verify_aud": False, "verify_iss": bool(self.settings.clerk_issuer)},
            )
        except jwt.PyJWTError as exc:
            raise errors.Unauthorized() from exc
        parties = self.settings.clerk_authorized_parties
        if parties and claims.get("azp") not in parties:
            raise errors.Unauthorized()
        return claims

    async def principal_for_session(self, claims: dict) -> Principal:
        user_id = str(claims["sub"])
        clerk_org_id, slug = active_org(claims)
        email = text_claim(claims, "email")
        cache_key = (user_id, clerk_org_id)
        org_id = self._orgs.get(cache_key)
        if org_id is None:
            org_id = await self.resolve_org(user_id, email, text_claim(claims, "name"), clerk_org_id, slug)
            if len(self._orgs) > 10_000:
                self._orgs.clear()
            self._orgs[cache_key] = org_id
        return Principal(org_id=org_id, user_id=user_id, email=email, via="session")

    async def resolve_org(self, user_id: str, email: str | None, name: str | None, clerk_org_id: str | None,
                          slug: str | None):
        async with db.transaction(self.pool) as conn:
            await orgs.ensure_user(conn, user_id, email, name)
            if clerk_org_id:
                return await orgs.clerk_org(conn, clerk_org_id, slug, user_id)
            return await orgs.personal_org(conn, user_id)

    async def close(self) -> None:
        if self.clerk is not None:
            await self.clerk.close()


def text_claim(claims: dict, name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def active_org(claims: dict) -> tuple[str | None, str | None]:
    """v2 tokens carry `o: {id, rol, slg}`; v1 tokens carry `org_id` and `org_slug`."""
    org = claims.get("o")
    if isinstance(org, dict) and org.get("id"):
        return str(org["id"]), org.get("slg")
    if claims.get("org_id"):
        return str(claims["org_id"]), claims.get("org_slug")
    return None, None


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def websocket_token(request: web.Request) -> str | None:
    """Browsers cannot set headers on a websocket: the progress feed also takes `?token=`."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.query.get("token") or None
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler):
    if request.path.startswith(PROTECTED_PREFIX):
        request[keys.PRINCIPAL] = await request.app[keys.AUTHENTICATOR].authenticate(request)
    return await handler(request)


def principal(request: web.Request) -> Principal:
    return request[keys.PRINCIPAL]
