"""A local JWKS server and a token minter standing in for Clerk."""
from __future__ import annotations

import json
import time

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.server import LocalServer


class FakeClerk(LocalServer):
    def __init__(self):
        super().__init__()
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        self.add_key("key-1")
        self.app.router.add_get("/.well-known/jwks.json", self.jwks)

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
