"""Authentication: Clerk session JWTs (RS256, JWKS) and `tp_live_` API keys, resolved to one organization
and a role in it; cross-site checks for cookie sessions; admin-only routes.

A browser sends the `__session` cookie with any request, including one a hostile page makes: a cookie-
authenticated request that changes state (or opens the progress websocket) must come from an allowed
origin (CLERK_AUTHORIZED_PARTIES or OUTREACH_PUBLIC_URL) and carry its body as JSON (multipart on upload
routes), else 403. A bearer header cannot be forged cross-site, so it needs neither check.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from urllib.parse import urlsplit

import aiohttp
import jwt
from aiohttp import web

from outreach.http import keys, params
from outreach.runtime import errors
from outreach.runtime.config import Settings
from outreach.runtime.models import Principal
from outreach.storage import api_keys, db, orgs

log = logging.getLogger(__name__)
LEEWAY_SECONDS = 5
JWKS_MIN_REFRESH_SECONDS = 10
PROTECTED_PREFIX = "/api/dashboard"
ADMIN, MEMBER = "admin", "member"
ADMIN_ROLES = {"admin", "org:admin"}  # v2 tokens say `admin`, v1 tokens `org:admin`
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
ADMIN_ONLY = "http_admin_only"
QUERY_TOKEN = "http_query_token"
ADMIN_REQUIRED = "Only an organization admin can do this"


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
        token, source = credential(request)
        if not token:
            raise errors.Unauthorized()
        if api_keys.looks_like_key(token):
            found = await self.principal_for_key(token)
        else:
            found = await self.principal_for_session(await self.verify_session(token))
        if source != "header":
            check_same_site(request, self.allowed_origins)
        return found

    @functools.cached_property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(filter(None, map(origin_of, (*self.settings.clerk_authorized_parties,
                                                      self.settings.public_url))))

    async def principal_for_key(self, key: str) -> Principal:
        """A key was made by an admin (creating keys needs one), so it acts with an admin's rights."""
        async with db.connection(self.pool) as conn:
            owner = await api_keys.key_owner(conn, key)
        if owner is None:
            raise errors.Unauthorized()
        return Principal(org_id=owner["org_id"], via="api_key", role=ADMIN, creator=owner["created_by"])

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
        return Principal(org_id=org_id, user_id=user_id, email=email, via="session", role=role_of(claims),
                         creator=user_id)

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


def role_of(claims: dict) -> str:
    """`o.rol` (v2) or `org_role` (v1) in the active organization; a user without one owns their personal org.
    Any role but admin (a custom one too) is a member's: the admin routes ask for admin explicitly."""
    org = claims.get("o")
    if isinstance(org, dict) and org.get("id"):
        role = org.get("rol")
    elif claims.get("org_id"):
        role = claims.get("org_role")
    else:
        return ADMIN
    return ADMIN if role in ADMIN_ROLES else MEMBER


def credential(request: web.Request) -> tuple[str | None, str]:
    """(token, where it came from: "header", "cookie" or "query")."""
    token = bearer_token(request)
    if token:
        return token, "header"
    if request.cookies.get("__session"):
        return request.cookies["__session"], "cookie"
    return websocket_token(request), "query"


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def websocket_token(request: web.Request) -> str | None:
    """Browsers cannot set headers on a websocket: a route marked `takes_query_token` (the progress feed)
    also takes `?token=` on its handshake. No other route does: a token in a URL ends up in logs."""
    if is_websocket(request) and getattr(request.match_info.handler, QUERY_TOKEN, False):
        return request.query.get("token") or None
    return None


def is_websocket(request: web.Request) -> bool:
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


def check_same_site(request: web.Request, allowed: frozenset[str]) -> None:
    """For a cookie or `?token=` credential: Forbidden unless the request may come from a browser page of ours."""
    if not (is_websocket(request) or request.method in STATE_CHANGING):
        return
    claimed = origin_of(request.headers.get("Origin") or request.headers.get("Referer"))
    if claimed not in allowed and not same_origin(request, claimed):
        raise errors.Forbidden("Cross-site request refused: its Origin is not an allowed origin")
    if request.method in STATE_CHANGING and request.body_exists and not json_or_upload(request):
        raise errors.Forbidden("Cross-site request refused: send the body as application/json")


def same_origin(request: web.Request, claimed: str | None) -> bool:
    """A page this server served (the live page), reached by whatever host name: the Origin names the Host the
    browser sent the request to. The scheme is not compared: behind a TLS proxy the request arrives as http."""
    return claimed is not None and urlsplit(claimed).netloc == request.host.lower()


def json_or_upload(request: web.Request) -> bool:
    """A form post from another site cannot be JSON; multipart is accepted only where a route takes a file."""
    if request.content_type == "application/json":
        return True
    takes_upload = params.inputs_of(request.match_info.handler).upload is not None
    return takes_upload and request.content_type == "multipart/form-data"


def origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]`, lower-cased, of a URL or an origin; None for anything else (`null` too)."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def admin_only(handler):
    """Mark a route that only an organization admin (or an API key) may call; members get 403."""
    setattr(handler, ADMIN_ONLY, True)
    return handler


def takes_query_token(handler):
    """Mark the websocket route that authenticates with `?token=` (see websocket_token)."""
    setattr(handler, QUERY_TOKEN, True)
    return handler


@web.middleware
async def auth_middleware(request: web.Request, handler):
    if request.path.startswith(PROTECTED_PREFIX):
        found = await request.app[keys.AUTHENTICATOR].authenticate(request)
        request[keys.PRINCIPAL] = found
        if getattr(request.match_info.handler, ADMIN_ONLY, False) and found.role != ADMIN:
            raise errors.Forbidden(ADMIN_REQUIRED)
    return await handler(request)


def principal(request: web.Request) -> Principal:
    return request[keys.PRINCIPAL]
