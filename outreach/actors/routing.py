"""Routing a campaign's Telegram messages and calls to the entity actors that own accounts and lines.

The dispatchers pick which account or line takes a send (from PostgreSQL); `EntityActors` is how the
send reaches that actor (on Ray: `remote.RayEntities`), so this module knows nothing of Ray.
"""
from __future__ import annotations

from typing import Protocol

from outreach.actors.dispatchers import call_request, refused_destination
from outreach.actors.telegram_account import ACCOUNT_UNAVAILABLE
from outreach.runtime.pacing import Warmup
from outreach.runtime.ports import CallRequest, Clock, SendJob, SendResult, SystemClock
from outreach.storage import db, numbers, telegram_accounts


class EntityActors(Protocol):
    """The actors that own a Telegram account or a phone line; a call to a dead actor is a SendResult."""

    async def send_telegram(self, account_id, campaign_id: str, username: str, text: str) -> SendResult: ...

    async def call(self, line: dict, request: CallRequest) -> SendResult: ...


class AccountTelegramDispatcher:
    """Picks the org's account that may send now with the fewest sends today; tries the next when one cannot
    send. When none can, the answer says from when the first of them may (`retry_at`)."""

    def __init__(self, entities: EntityActors, pool, org_id, warmup: Warmup = Warmup(), clock: Clock | None = None):
        self.entities = entities
        self.pool = pool
        self.org_id = org_id
        self.warmup = warmup
        self.clock = clock or SystemClock()

    async def dispatch(self, job: SendJob) -> SendResult:
        now = await self.clock.now()
        async with db.connection(self.pool) as conn:
            capacity = await telegram_accounts.org_capacity(conn, self.org_id, now, self.warmup)
        reasons, retry_times = [], [capacity.retry_at]
        for account_id in capacity.account_ids:
            result = await self.entities.send_telegram(account_id, job.campaign_id, job.lead["telegram_username"],
                                                       job.text or "")
            if result.outcome != ACCOUNT_UNAVAILABLE:
                return result
            reasons.append(result.error)
            retry_times.append(result.retry_at)
        reason = "Campaign is not active" if "Campaign is not active" in reasons else (
            "No Telegram account with capacity today")
        retry_at = min((when for when in retry_times if when is not None), default=None)
        return SendResult("not_sent", error=reason, channel_blocked=True, retry_at=retry_at)


class LineVoiceDispatcher:
    """Calls from the campaign's numbers (else any of the org's active numbers), each a VoiceLine actor."""

    def __init__(self, entities: EntityActors, pool, campaign: dict):
        self.entities = entities
        self.pool = pool
        self.campaign = campaign
        self._next = 0

    async def dispatch(self, job: SendJob) -> SendResult:
        if (refused := refused_destination(job)) is not None:
            return refused
        async with db.connection(self.pool) as conn:
            lines = await numbers.lines_for_campaign(conn, self.campaign["org_id"], self.campaign["id"])
        if not lines:
            return SendResult("not_sent", error="No active phone number to call from", channel_blocked=True)
        line = lines[self._next % len(lines)]
        self._next += 1
        return await self.entities.call(line, call_request(job, line["number"], self.campaign))
