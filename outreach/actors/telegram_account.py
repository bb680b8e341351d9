"""TelegramAccount: the only owner of one account's session; serializes, paces and limits its sends."""
from __future__ import annotations

import asyncio
import datetime
import random
from typing import Protocol

from outreach.runtime import windows
from outreach.runtime.pacing import Slot, Warmup, send_gap
from outreach.runtime.ports import Clock, SendResult, SystemClock, TelegramSender

ACCOUNT_UNAVAILABLE = "account_unavailable"
BANNING_OUTCOMES = {"banned", "deactivated", "session_revoked"}
DEFAULT_FLOOD_WAIT = 60
TURNS = 3  # a send waits for its turn at most this often before it is handed back with a time to retry


class AccountStore(Protocol):
    async def active_campaign_settings(self, campaign_id) -> dict | None: ...
    async def take_daily_slot(self, account_id, now: datetime.datetime, warmup: Warmup, gap) -> Slot: ...
    async def return_daily_slot(self, account_id, now: datetime.datetime) -> None: ...
    async def set_flood_wait(self, account_id, until: datetime.datetime) -> None: ...
    async def set_status(self, account_id, status: str) -> None: ...


class TelegramAccount:
    """Sends one message at a time. Each send counts against the account's daily limit (its warm-up ramp),
    and sets when the next may go: the day's quota spread over the asking campaign's sending window,
    jittered by `pacing`. A wait within the pacing is slept here; a longer one (the next paced slot, the
    next day, a flood wait) is handed back as `retry_at`, so the campaign defers the lead instead of
    holding the account."""

    def __init__(self, account_id, store: AccountStore, sender: TelegramSender, pacing: tuple[float, float] = (30, 90),
                 rng: random.Random | None = None, clock: Clock | None = None, sleep=asyncio.sleep,
                 warmup: Warmup = Warmup(), spread: bool = True):
        self.account_id = account_id
        self.store = store
        self.sender = sender
        self.pacing = pacing
        self.rng = rng or random.Random()
        self.clock = clock or SystemClock()
        self.sleep = sleep
        self.warmup = warmup
        self.spread = spread  # off: the pacing alone spaces sends (simulated accounts)
        self._lock = asyncio.Lock()

    async def send(self, campaign_id, username: str, text: str) -> SendResult:
        async with self._lock:
            refused = await self._take_turn(campaign_id)
            if refused is not None:
                return refused
            result = await self.sender.send_message(username, text)
            return await self._settle(result)

    async def _take_turn(self, campaign_id) -> SendResult | None:
        """Count this send against the account (None), or say why it cannot go now and from when it may."""
        for _ in range(TURNS):
            # No campaign: the public demo message (http/demo.py), paced and counted like any send, no window.
            settings = {} if campaign_id is None else await self.store.active_campaign_settings(campaign_id)
            if settings is None:
                return unavailable("Campaign is not active")
            now = await self.clock.now()
            slot = await self.store.take_daily_slot(self.account_id, now, self.warmup, self._gap_for(settings))
            if slot.refusal is None:
                return None
            wait = (slot.retry_at - now).total_seconds() if slot.retry_at else None
            if wait is None or wait > self.pacing[1]:
                return unavailable(slot.refusal, slot.retry_at)
            await self.sleep(wait)
        return unavailable("Telegram account is pacing its sends", slot.retry_at)

    def _gap_for(self, campaign_settings: dict):
        """Seconds until the account's next send, given today's limit (the store knows it)."""
        window_minutes = windows.windows_for(campaign_settings).sending.length if self.spread else 0
        draw = self.rng.random()
        return lambda daily_limit: send_gap(window_minutes, daily_limit, self.pacing, draw)

    async def _settle(self, result: SendResult) -> SendResult:
        if result.outcome not in ("flood_wait", "peer_flood", *BANNING_OUTCOMES):
            return result
        now = await self.clock.now()
        await self.store.return_daily_slot(self.account_id, now)
        if result.outcome == "flood_wait":
            until = now + datetime.timedelta(seconds=result.retry_after or DEFAULT_FLOOD_WAIT)
            await self.store.set_flood_wait(self.account_id, until)
            return unavailable(result.error or f"FloodWait {result.retry_after} s", until)
        if result.outcome == "peer_flood":
            await self.store.set_status(self.account_id, "cooldown")
            return unavailable(result.error or "PeerFlood: account put in cooldown")
        await self.store.set_status(self.account_id, "banned")
        return unavailable(result.error or f"Telegram account {result.outcome}")


def unavailable(reason: str, retry_at: datetime.datetime | None = None) -> SendResult:
    """Nothing was sent because of this account: the dispatcher tries another one. `retry_at`: when this
    account may send again (None: not by itself)."""
    return SendResult(ACCOUNT_UNAVAILABLE, error=reason, channel_blocked=True, retry_at=retry_at)
