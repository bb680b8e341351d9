"""Telegram usernames in the one form every part of the runtime compares: lower case, without `@` and without
the t.me link people paste (`https://t.me/JohnDoe`, `t.me/JohnDoe`, `@JohnDoe` are all `johndoe`).

Telegram treats usernames without case, so the lower-case form names the same account; leads, the
do-not-contact list and the peers an account resolved all store it, so plain equality matches them.
"""
from __future__ import annotations

import re

# The link forms Telegram (and Telethon's parse_username) accept in front of a username.
LINK = re.compile(r"^(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/", re.IGNORECASE)


def canonical(value: str) -> str:
    """The stored form of a username as typed or pasted; no validity check (see optout.normalise_username)."""
    name = LINK.sub("", value.strip())
    name = re.split(r"[/?#]", name, maxsplit=1)[0]  # a trailing slash or query of a pasted link
    return name.strip().lstrip("@").strip().lower()
