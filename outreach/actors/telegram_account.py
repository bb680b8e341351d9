"""TelegramAccount: the only owner of one account's session; serializes, paces and limits its sends."""
from __future__ import annotations

import asyncio
import random
import time
from typing import Protocol

from outreach.runtime.ports import SendResult, TelegramSender

ACCOUNT_UNAVAILABLE = "account_unavailable"
BANNING_OUTCOMES = {"banned", "deactivated", "session_revoked"}


class AccountStore(Protocol):
    async def campaign_active(self, campaign_id) -> bool: ...
    async def take_daily_slot(self, account_id) -> str | None: ...
    async def return_daily_slot(self, account_id) -> None: ...
    async def set_flood_wait(self, account_id, seconds: int) -> None: ...
    async def set_status(self, account_id, status: str) -> None: ...


class TelegramAccount:
    def __init__(self, account_id, store: AccountStore, sender: TelegramSender, pacing: tuple[float, float] = (30, 90),
                 rng: random.Random | None = None, clock=time.monotonic, sleep=asyncio.sleep):
        self.account_id = account_id
        self.store = store
        self.sender = sender
        self.pacing = pacing
        self.rng = rng or random.Random()
        self.clock = clock
        self.sleep = sleep
        self._lock = asyncio.Lock()
        self._next_send_at = 0.0

    async def send(self, campaign_id, username: str, text: str) -> SendResult:
        """One send at a time per account, `pacing` seconds apart (jittered), within the daily limit."""
        async with self._lock:
            await self._wait_turn()
            if not await self.store.campaign_active(campaign_id):
                return unavailable("Campaign is not active")
            refusal = await self.store.take_daily_slot(self.account_id)
            if refusal:
                return unavailable(refusal)
            result = await self.sender.send_message(username, text)
            self._next_send_at = self.clock() + self.rng.uniform(*self.pacing)
            return await self._settle(result)

    async def _wait_turn(self) -> None:
        delay = self._next_send_at - self.clock()
        if delay > 0:
            await self.sleep(delay)

    async def _settle(self, result: SendResult) -> SendResult:
        if result.outcome == "flood_wait":
            await self.store.return_daily_slot(self.account_id)
            await self.store.set_flood_wait(self.account_id, result.retry_after or 60)
            return unavailable(result.error or f"FloodWait {result.retry_after} s")
        if result.outcome == "peer_flood":
            await self.store.return_daily_slot(self.account_id)
            await self.store.set_status(self.account_id, "cooldown")
            return unavailable(result.error or "PeerFlood: account put in cooldown")
        if result.outcome in BANNING_OUTCOMES:
            await self.store.return_daily_slot(self.account_id)
            await self.store.set_status(self.account_id, "banned")
            return unavailable(result.error or f"Telegram account {result.outcome}")
        return result


def unavailable(reason: str) -> SendResult:
    """Nothing was sent because of this account: the dispatcher tries another one."""
    return SendResult(ACCOUNT_UNAVAILABLE, error=reason, channel_blocked=True)
