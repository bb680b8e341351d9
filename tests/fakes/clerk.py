"""A local JWKS server, a token minter and the Backend API's `GET /v1/users/{id}`, standing in for Clerk."""
from __future__ import annotations

import json
import time

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.server import LocalServer


class FakeClerk(LocalServer):
    secret_key = "sk_test_fake_clerk"

    def __init__(self):
        super().__init__()
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        self.users: dict[str, dict] = {}
        self.user_lookups: list[str] = []
        self.add_key("key-1")
        self.app.router.add_get("/.well-known/jwks.json", self.jwks)
        self.app.router.add_get("/v1/users/{user_id}", self.get_user)

    @property
    def api_url(self) -> str:
        return self.url("")

    def add_user(self, user_id: str, *emails: str, primary: int = 0) -> None:
        """A user as the Backend API answers it: its addresses, one of them primary."""
        addresses = [{"id": f"idn_{index}_{user_id}", "object": "email_address", "email_address": email,
                      "verification": {"status": "verified"}} for index, email in enumerate(emails)]
        self.users[user_id] = {"id": user_id, "object": "user", "email_addresses": addresses,
                               "primary_email_address_id": addresses[primary]["id"] if addresses else None,
                               "first_name": None, "last_name": None}

    async def get_user(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return web.json_response({"errors": [{"code": "authentication_invalid", "message": "Unauthorized"}]},
                                     status=401)
        user_id = request.match_info["user_id"]
        self.user_lookups.append(user_id)
        if user_id not in self.users:
            return web.json_response({"errors": [{"code": "resource_not_found", "message": "not found"}]},
                                     status=404)
        return web.json_response(self.users[user_id])

    @property
    def jwks_url(self) -> str:
        return self.url("/.well-known/jwks.json")

    def add_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        documents = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            documents.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return web.json_response({"keys": documents})

    def mint(self, sub: str, *, kid: str = "key-1", key: rsa.RSAPrivateKey | None = None, lifetime: int = 300,
             **claims) -> str:
        now = int(time.time())
        payload = {"sub": sub, "iat": now, "nbf": now, "exp": now + lifetime, **claims}
        return jwt.encode(payload, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})
