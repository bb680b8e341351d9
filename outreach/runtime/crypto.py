"""Secrets at rest (Telegram sessions): Fernet tokens under a key derived from OUTREACH_SECRET_KEY.

Fernet is AES-128-CBC with an HMAC-SHA256 over the whole token, so a token encrypted under another
key, or altered, is refused rather than decrypted into garbage. OUTREACH_SECRET_KEY is any string;
HKDF turns it into the 32 bytes Fernet needs, so the key is never used directly.
"""
from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from outreach.runtime.errors import ConfigError

# Fixed, so the same OUTREACH_SECRET_KEY always derives the same key; `info` names the purpose, so a
# key derived here for secrets at rest is never the key of anything else derived from the same secret.
SALT = b"outreach-runtime"
INFO = b"outreach secrets at rest v1"


def encrypt(secret_key: str, text: str) -> str:
    return fernet_for(secret_key).encrypt(text.encode()).decode("ascii")


def decrypt(secret_key: str, token: str, *, label: str = "stored secret") -> str:
    """The plain text of `token`; a token made under another OUTREACH_SECRET_KEY is a ConfigError."""
    try:
        return fernet_for(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise ConfigError(f"cannot decrypt {label}: was OUTREACH_SECRET_KEY changed?") from exc


@functools.lru_cache(maxsize=8)
def fernet_for(secret_key: str) -> Fernet:
    if not secret_key:
        raise ConfigError("OUTREACH_SECRET_KEY is required to encrypt and decrypt secrets")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))
