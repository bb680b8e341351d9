"""TelegramInbox: one account's incoming private messages, taken as leads' replies while the account is active.

It runs inside the account's actor, on the client that sends (one session, one process). The live handler is
registered before catching up, so a message arriving meanwhile is not missed; one read twice is applied once
(storage.replies keys inbound messages by sender and message id). Catching up reads the dialogs' unread
messages newer than the last message id handled, which PostgreSQL keeps across actor restarts.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

log = logging.getLogger(__name__)
ACTIVE_CHECK_SECONDS = 60.0  # how often a listening account looks whether it is still active


class InboxStore(Protocol):
    """What an inbox reads and writes (storage.replies.PgInbox)."""

    async def last_seen(self) -> int: ...
    async def record(self, peer_id: int, message_id: int, text: str) -> dict | None: ...
    async def listens(self) -> bool: ...


class TelegramInbox:
    def __init__(self, account_id, store: InboxStore, sender, check_every: float = ACTIVE_CHECK_SECONDS,
                 sleep=asyncio.sleep):
        self.account_id = account_id
        self.store = store
        self.sender = sender  # providers.telegram.TelethonSender: listen(), unread_since()
        self.check_every = check_every
        self.sleep = sleep

    async def start(self) -> int:
        """Listen from now on, then take what arrived while nobody listened; returns how many that were."""
        await self.sender.listen(self.take)
        missed = await self.sender.unread_since(await self.store.last_seen())
        for message in missed:
            await self.take(message)
        return len(missed)

    async def run(self, started: asyncio.Event | None = None) -> None:
        """Start (then set `started`), and stay until the account is no longer active (a ban, a cooldown,
        unassigned)."""
        await self.start()
        if started is not None:
            started.set()
        while await self.store.listens():
            await self.sleep(self.check_every)

    async def take(self, message) -> None:
        """One incoming message, applied in one transaction (storage.replies.record_telegram_reply)."""
        try:
            reply = await self.store.record(message.peer_id, message.message_id, message.text)
        except Exception:  # rolled back with the cursor: a catch-up reads it again unless a later message moved it
            log.exception("telegram account %s: could not record message %s", self.account_id, message.message_id)
            return
        if reply is not None:
            log.info("telegram account %s: reply from lead %s%s", self.account_id, reply["lead_id"],
                     " (asks to stop)" if reply["stop"] else "")


async def keep_listening(accounts, listen, until: asyncio.Event | None = None,
                         every: float = ACTIVE_CHECK_SECONDS) -> list:
    """In each API process: every account that may write (`await accounts()`) listens for replies
    (`listen(account_ids)`, the runtime's listen_telegram; an account already listening goes on). Every `every`
    seconds until `until` is set; once without it (tests). Returns the accounts of the last pass."""
    while True:
        account_ids = []
        try:
            account_ids = await accounts()
            if account_ids:
                await listen(account_ids)
        except Exception:  # the database or Ray may be why: the next pass tries again
            log.warning("could not start the Telegram inboxes", exc_info=True)
        if until is None:
            return account_ids
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), every)
        if until.is_set():
            return account_ids
