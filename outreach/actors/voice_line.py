"""VoiceLine: one phone number; places its calls one at a time (configurable)."""
from __future__ import annotations

import asyncio

from outreach.actors.telegram_account import unavailable
from outreach.runtime.ports import CallRequest, SendResult, VoiceCaller


class VoiceLine:
    def __init__(self, number_id, store, caller: VoiceCaller, max_concurrent_calls: int = 1):
        self.number_id = number_id
        self.store = store
        self.caller = caller
        self._slots = asyncio.Semaphore(max_concurrent_calls)

    async def call(self, call: CallRequest) -> SendResult:
        async with self._slots:
            if not await self.store.campaign_active(call.campaign_id):
                return unavailable("Campaign is not active")
            return await self.caller.place_call(call)
