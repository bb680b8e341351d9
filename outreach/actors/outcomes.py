"""What a campaign run records: each send and each lead's end, gathered into column batches for one write."""
from __future__ import annotations

import dataclasses
import datetime
import math

from outreach.runtime import templates
from outreach.runtime.ports import SendResult

PROVIDER_ERROR = "provider_error"  # the provider failed in an unexpected way: a failure for this lead, counted
NOW = datetime.datetime.min  # stored as '-infinity': due at once
VOICE_CALL_STATUS = {"sent": "completed", "no_answer": "no_answer", "busy": "busy", "voicemail": "voicemail"}


@dataclasses.dataclass
class Attempted:
    """One send and what came of it, waiting to be recorded."""

    lead: dict
    channel: str
    result: SendResult
    subject: str | None = None
    text: str | None = None


@dataclasses.dataclass
class Ended:
    """A lead reaching a terminal state (or going back to pending with a reason)."""

    lead: dict
    state: str
    channel: str | None
    error: str | None
    step: int = 0  # the step the lead is on afterwards (the next one when a step ended and more remain)
    due_at: object = None  # when that step may fire (datetime; the claimed value when unchanged)
    reached: bool = False  # this step reached the lead


@dataclasses.dataclass
class OutcomeBatch:
    """Column arrays for storage.runs.record_outcomes."""

    attempt_leads: list = dataclasses.field(default_factory=list)
    attempt_channels: list = dataclasses.field(default_factory=list)
    attempt_outcomes: list = dataclasses.field(default_factory=list)
    attempt_provider_ids: list = dataclasses.field(default_factory=list)
    attempt_errors: list = dataclasses.field(default_factory=list)
    attempt_steps: list = dataclasses.field(default_factory=list)
    lead_ids: list = dataclasses.field(default_factory=list)
    lead_states: list = dataclasses.field(default_factory=list)
    lead_channels: list = dataclasses.field(default_factory=list)
    lead_errors: list = dataclasses.field(default_factory=list)
    lead_steps: list = dataclasses.field(default_factory=list)
    lead_due: list = dataclasses.field(default_factory=list)
    lead_reached: list = dataclasses.field(default_factory=list)
    contacted: list = dataclasses.field(default_factory=list)
    message_leads: list = dataclasses.field(default_factory=list)
    message_channels: list = dataclasses.field(default_factory=list)
    message_statuses: list = dataclasses.field(default_factory=list)
    message_contents: list = dataclasses.field(default_factory=list)
    message_metadata: list = dataclasses.field(default_factory=list)
    message_provider_ids: list = dataclasses.field(default_factory=list)
    call_leads: list = dataclasses.field(default_factory=list)
    call_statuses: list = dataclasses.field(default_factory=list)
    call_numbers: list = dataclasses.field(default_factory=list)
    call_durations: list = dataclasses.field(default_factory=list)
    call_provider_ids: list = dataclasses.field(default_factory=list)
    refund_emails: int = 0
    refund_telegram: int = 0
    minutes: int = 0

    def add_attempt(self, item: Attempted) -> None:
        result, lead_id = item.result, item.lead["id"]
        outcome = "not_sent" if result.channel_blocked else result.outcome
        self.attempt_leads.append(lead_id)
        self.attempt_channels.append(item.channel)
        self.attempt_outcomes.append(outcome)
        self.attempt_provider_ids.append(result.provider_id)
        self.attempt_errors.append(result.error)
        self.attempt_steps.append(item.lead.get("step", 0))
        if outcome not in ("sent", "unknown"):  # only what really went out counts (a call's reserved minute too)
            self.refund_emails += item.channel == "email"
            self.refund_telegram += item.channel == "telegram"
            self.minutes -= item.channel == "voice"
        if outcome == "not_sent":
            return
        if item.channel == "voice":
            self.add_call(item)
        else:
            self.add_message(item, outcome)

    def add_message(self, item: Attempted, outcome: str) -> None:
        lead = item.lead
        metadata = ({"subject": item.subject, "toEmail": lead.get("email")} if item.channel == "email"
                    else {"telegramUsername": lead.get("telegram_username")})
        if item.result.error:
            metadata["error"] = item.result.error
        self.message_leads.append(lead["id"])
        self.message_channels.append(item.channel)
        self.message_statuses.append({"sent": "sent", "unknown": "pending"}.get(outcome, "failed"))
        self.message_contents.append(item.text)
        self.message_metadata.append(metadata)
        self.message_provider_ids.append(item.result.provider_id)

    def add_call(self, item: Attempted) -> None:
        duration = item.result.duration_seconds
        self.call_leads.append(item.lead["id"])
        self.call_statuses.append(VOICE_CALL_STATUS.get(item.result.outcome, "failed"))
        self.call_numbers.append(item.lead.get("phone"))
        self.call_durations.append(duration)
        self.call_provider_ids.append(item.result.provider_id)
        if item.result.ok:  # its first minute was reserved when the call started
            self.minutes += max(math.ceil(duration / 60), 1) - 1

    def add_end(self, item: Ended) -> None:
        self.lead_ids.append(item.lead["id"])
        self.lead_states.append(item.state)
        self.lead_channels.append(item.channel)
        self.lead_errors.append(item.error)
        self.lead_steps.append(item.step)
        self.lead_due.append(item.due_at if item.due_at is not None else item.lead.get("due_at", NOW))
        self.lead_reached.append(item.reached)
        if item.state == "sent" or item.reached:
            self.contacted.append(item.lead["id"])


UNRECORDED = "unrecorded_attempt"  # the lead's key for an attempt that ended its step, written with that end


def ends_the_step(result: SendResult) -> bool:
    """Sent, unknown, or waiting on the channel's pace: the lead's step ends here, with no other channel tried."""
    return result.ok or result.outcome == "unknown" or result.retry_at is not None


def with_attempt(lead: dict, ended: Ended):
    """The lead's end, with the attempt that ended its step when there is one: one entry, one statement."""
    attempted = lead.pop(UNRECORDED, None)
    return (attempted, ended) if attempted else ended


def flatten(entries: list) -> list:
    return [item for entry in entries for item in (entry if isinstance(entry, tuple) else (entry,))]


def counts_of(items: list) -> dict[str, int]:
    """Counter increments for the metrics: leads by channel and outcome, provider errors by channel."""
    counts: dict[str, int] = {}
    for item in items:
        if isinstance(item, Ended) and item.state != "pending":
            key = f"leads|{item.channel or 'none'}|{item.state}"
        elif isinstance(item, Attempted) and item.result.outcome == PROVIDER_ERROR:
            key = f"provider_errors|{item.channel}"
        else:
            continue
        counts[key] = counts.get(key, 0) + 1
    return counts


def end_events(status: str, reason: str | None, scheduled: dict | None, counts: dict) -> list[dict]:
    """A run that leaves leads on timers says when they come due (`scheduled`); any other end is `done`."""
    if scheduled:
        return [{"type": "progress", **counts}, {"type": "scheduled", "dueAt": scheduled["dueAt"].isoformat(),
                                                 "leads": scheduled["leads"], **counts}]
    done = {"type": "done", "status": status, **counts}
    if reason:
        done["reason"] = reason
    return [{"type": "status", "status": status, **({"reason": reason} if reason else {})}, done]


def result_of(item: Ended) -> dict:
    result = {"leadId": str(item.lead["id"]), "leadName": templates.lead_name(item.lead),
              "channel": item.channel or "none", "status": item.state}
    if item.error:
        result["error"] = item.error
    return result


def latency_summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50": 0.0, "p99": 0.0}
    ordered = sorted(latencies)
    pick = lambda share: ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000  # noqa: E731
    return {"p50": round(pick(0.50), 2), "p99": round(pick(0.99), 2)}
