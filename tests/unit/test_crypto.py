"""Secrets at rest: what is encrypted under one OUTREACH_SECRET_KEY decrypts only under that key."""
from __future__ import annotations

import pytest

from outreach.runtime import crypto
from outreach.runtime.errors import ConfigError

SESSION = "1BVtsOKABu" + "x" * 340  # about the length of a Telethon StringSession


def test_round_trip():
    token = crypto.encrypt("server key", SESSION)
    assert token != SESSION and SESSION not in token
    assert crypto.decrypt("server key", token) == SESSION


def test_the_same_text_encrypts_differently_each_time():
    assert crypto.encrypt("server key", SESSION) != crypto.encrypt("server key", SESSION)


def test_a_changed_secret_key_is_a_clear_error():
    token = crypto.encrypt("old key", SESSION)
    with pytest.raises(ConfigError) as caught:
        crypto.decrypt("new key", token, label="Telegram session")
    assert str(caught.value) == "cannot decrypt Telegram session: was OUTREACH_SECRET_KEY changed?"


@pytest.mark.parametrize("token", ["sandbox", "", "not a token at all", "gAAAAAB" + "A" * 80, "sessión"])
def test_anything_but_a_token_of_this_key_is_refused(token):
    with pytest.raises(ConfigError, match="was OUTREACH_SECRET_KEY changed"):
        crypto.decrypt("server key", token)


def test_a_tampered_token_is_refused():
    token = crypto.encrypt("server key", SESSION)
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    with pytest.raises(ConfigError):
        crypto.decrypt("server key", tampered)


def test_an_empty_secret_key_is_refused():
    with pytest.raises(ConfigError, match="OUTREACH_SECRET_KEY is required"):
        crypto.encrypt("", SESSION)
