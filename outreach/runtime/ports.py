"""The interfaces the core consumes. Providers implement the senders; storage implements the stores."""
from __future__ import annotations

import dataclasses
import datetime
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class OutboundEmail:
    sender: str  # "Name <address>"
    to: str
    reply_to: str | None
    subject: str
    text: str
    tags: tuple[tuple[str, str], ...] = ()  # (name, value) pairs the provider echoes in its webhooks (org_id)
    headers: tuple[tuple[str, str], ...] = ()  # extra message headers (List-Unsubscribe on campaign emails)


@dataclasses.dataclass(frozen=True)
class CallRequest:
    to: str
    from_number: str
    lead: dict
    script: str
    objection_handlers: list
    voice: dict
    campaign_id: str
    lead_id: str


@dataclasses.dataclass(frozen=True)
class SendResult:
    """What a provider answered. `outcome` is "sent" or a failure code.

    Lead-level failures (no_answer, busy, privacy_restricted, username_not_found, bounced, ...) make
    the runtime try the lead's next channel; `channel_blocked` says the failure is about the sender
    (limit, flood wait, not configured), so the lead stays pending for that channel.
    """

    outcome: str
    provider_id: str | None = None
    error: str | None = None
    channel_blocked: bool = False
    duration_seconds: int = 0
    retry_after: int | None = None  # seconds the sender must wait (Telegram FloodWait)
    # Not sent, and the lead may be tried on this channel again from this instant (a window that opens later,
    # an account's next paced slot or day): the runner defers the lead until then instead of retrying now.
    retry_at: datetime.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "sent"


class EmailSender(Protocol):
    async def send_email(self, email: OutboundEmail, idempotency_key: str, still_wanted=None) -> SendResult:
        """`still_wanted()` false after waiting for a turn: nothing is sent (channel_blocked)."""


class TelegramSender(Protocol):
    async def send_message(self, username: str, text: str) -> SendResult: ...


class VoiceCaller(Protocol):
    async def place_call(self, call: CallRequest) -> SendResult: ...


class Drafter(Protocol):
    async def draft(self, channel: str, lead: dict, campaign: dict) -> tuple[str | None, str]:
        """(subject, text) written for the lead from the campaign's script; the script itself is never sent."""


class ChannelDispatcher(Protocol):
    """Sends one lead's message on one channel for a campaign; the runner calls it concurrently."""

    async def dispatch(self, job: "SendJob") -> SendResult: ...


@dataclasses.dataclass(frozen=True)
class SendJob:
    campaign_id: str
    org_id: str
    lead: dict
    channel: str
    idempotency_key: str
    subject: str | None
    text: str | None
    still_wanted: object = None  # () -> bool, checked right before the provider call (after any rate-limit wait)


class RunStore(Protocol):
    """What a campaign run reads and writes; implemented over PostgreSQL by storage.run_store."""

    async def load_campaign(self) -> dict: ...
    async def campaign_status(self) -> str | None: ...
    async def reconcile(self) -> int: ...
    async def claim_leads(self, after, size: int, now: datetime.datetime) -> list[dict]: ...
    async def due_waiting(self, now: datetime.datetime) -> int: ...
    async def sent_before(self, lead_id) -> list[dict]: ...
    async def schedule_next(self, now: datetime.datetime) -> dict | None: ...
    async def start_attempts(self, plan: str, jobs: list[tuple]) -> dict: ...
    async def record_outcomes(self, batch) -> None: ...
    async def release_leads(self, lead_ids: list) -> None: ...
    async def finish_campaign(self, status: str, reason: str | None = None) -> bool: ...
    async def run_counts(self) -> dict: ...


class Clock(Protocol):
    """The time the runner and the scheduler decide "is it due" by (SQL compares with it, never `now()`)."""

    async def now(self) -> datetime.datetime: ...


class SystemClock:
    async def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.timezone.utc)


class TimerStore(Protocol):
    """What the scheduler reads and claims: campaigns' wake-ups (storage.timers.PgTimerStore)."""

    async def claim_due(self, now: datetime.datetime, limit: int) -> list: ...
    async def next_wake(self) -> datetime.datetime | None: ...
    def listening(self, callback):
        """An async context manager: `callback()` on each wake-up set earlier by a run or a start; it yields a
        function telling whether the listening connection is still alive."""


class EventSink(Protocol):
    async def publish(self, events: list[dict], counts: dict[str, int] | None = None) -> list[str]:
        """Append events to the campaign's feed and add `counts` to the shared metrics counters."""
