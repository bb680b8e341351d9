"""TelegramAccount driven directly, with in-memory ports that record calls and an injectable clock."""
from __future__ import annotations

import datetime
import random

from outreach.actors.telegram_account import ACCOUNT_UNAVAILABLE, TelegramAccount
from outreach.runtime import pacing
from outreach.runtime.ports import SendResult

T0 = datetime.datetime(2026, 6, 3, 9, 0, tzinfo=datetime.timezone.utc)
NINE_TO_SIX = {"sendingWindow": {"start": "09:00", "end": "18:00"}}


class MemoryStore:
    """One account's row, decided by the same rule PostgreSQL's store applies (pacing.check_slot)."""

    def __init__(self, limit: int = 3, active: bool = True, settings: dict | None = None, **row):
        self.row = {"status": "active", "daily_message_count": 0, "daily_count_day": None, "day_timezone": "UTC",
                    "max_daily_messages": limit, "warmup_started_on": None, "flood_wait_until": None,
                    "next_send_at": None, **row}
        self.active, self.settings = active, settings or {}

    @property
    def count(self) -> int:
        return self.row["daily_message_count"]

    async def active_campaign_settings(self, campaign_id):
        return self.settings if self.active else None

    async def take_daily_slot(self, account_id, now, warmup, gap):
        slot = pacing.check_slot(self.row, now, warmup)
        if slot.refusal is None:
            self.row.update(daily_message_count=pacing.sent_today(self.row, now) + 1, daily_count_day=now.date(),
                            next_send_at=now + datetime.timedelta(seconds=gap(slot.daily_limit)))
        return slot

    async def return_daily_slot(self, account_id, now) -> None:
        self.row["daily_message_count"] -= 1

    async def set_flood_wait(self, account_id, until) -> None:
        self.row["flood_wait_until"] = until

    async def set_status(self, account_id, status: str) -> None:
        self.row["status"] = status


class ScriptedSender:
    def __init__(self, *results: SendResult):
        self.results, self.sent = list(results), []

    async def send_message(self, username: str, text: str) -> SendResult:
        self.sent.append((username, text))
        return self.results.pop(0) if self.results else SendResult("sent", provider_id="m1")


class FakeClock:
    def __init__(self, start: datetime.datetime = T0):
        self.current, self.slept = start, []

    async def now(self) -> datetime.datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += datetime.timedelta(seconds=seconds)


def account(store, sender, clock=None, pacing=(30, 90), spread=False, warmup=pacing.Warmup()):
    clock = clock or FakeClock()
    return TelegramAccount("acc", store, sender, pacing, random.Random(1), clock=clock, sleep=clock.sleep,
                           warmup=warmup, spread=spread)


async def test_daily_limit_is_enforced_until_the_accounts_next_day():
    store, sender, clock = MemoryStore(limit=2), ScriptedSender(), FakeClock()
    worker = account(store, sender, clock, pacing=(0, 0))
    results = [await worker.send("c", f"u{i}", "hi") for i in range(3)]
    assert [result.outcome for result in results] == ["sent", "sent", ACCOUNT_UNAVAILABLE]
    assert results[2].retry_at == datetime.datetime(2026, 6, 4, tzinfo=datetime.timezone.utc)
    assert len(sender.sent) == 2 and clock.slept == []
    clock.current = results[2].retry_at
    assert (await worker.send("c", "u3", "hi")).ok and store.count == 1


async def test_sends_are_paced_with_jitter_between_30_and_90_seconds():
    clock = FakeClock()
    worker = account(MemoryStore(limit=10), ScriptedSender(), clock)
    for index in range(3):
        assert (await worker.send("c", f"u{index}", "hi")).ok
    assert len(clock.slept) == 2 and all(30 <= gap <= 90 for gap in clock.slept)
    assert clock.slept[0] != clock.slept[1]


async def test_the_day_is_spread_over_the_window_and_long_waits_are_handed_back():
    clock, sender = FakeClock(), ScriptedSender()
    worker = account(MemoryStore(limit=50, settings=NINE_TO_SIX), sender, clock, spread=True)
    assert (await worker.send("c", "u0", "hi")).ok
    second = await worker.send("c", "u1", "hi")
    assert second.outcome == ACCOUNT_UNAVAILABLE and second.channel_blocked
    assert second.error == "Telegram account is pacing its sends"
    assert 618 <= (second.retry_at - T0).total_seconds() <= 678  # 9 h / 50, jittered by 60 s
    assert clock.slept == [] and len(sender.sent) == 1  # nothing held: the campaign defers the lead
    clock.current = second.retry_at
    assert (await worker.send("c", "u1", "hi")).ok


async def test_fifty_sends_fill_the_window_without_a_burst():
    clock, sent_at = FakeClock(), []
    worker = account(MemoryStore(limit=50, settings=NINE_TO_SIX), ScriptedSender(), clock, spread=True)
    while len(sent_at) < 50:
        result = await worker.send("c", "u", "hi")
        if result.ok:
            sent_at.append(clock.current)
        else:
            clock.current = result.retry_at
    span = (sent_at[-1] - sent_at[0]).total_seconds() / 3600
    assert 8.5 < span < 9.5  # 49 gaps of 9 h / 50 on average: the day's quota spans the window
    assert sum(1 for when in sent_at if when < T0 + datetime.timedelta(hours=1)) <= 6


async def test_a_new_account_warms_up_day_by_day():
    store = MemoryStore(limit=40, warmup_started_on=T0.date())
    clock = FakeClock()
    worker = account(store, ScriptedSender(), clock, pacing=(0, 0), warmup=pacing.Warmup(start=5, step=5))
    outcomes = [(await worker.send("c", f"u{i}", "hi")).outcome for i in range(6)]
    assert outcomes == ["sent"] * 5 + [ACCOUNT_UNAVAILABLE]
    clock.current += datetime.timedelta(days=1)
    outcomes = [(await worker.send("c", f"v{i}", "hi")).outcome for i in range(11)]
    assert outcomes == ["sent"] * 10 + [ACCOUNT_UNAVAILABLE]


async def test_flood_wait_pauses_the_account_and_does_not_count():
    store, clock = MemoryStore(), FakeClock()
    worker = account(store, ScriptedSender(SendResult("flood_wait", error="FLOOD_WAIT_420", retry_after=420)), clock)
    result = await worker.send("c", "u", "hi")
    assert result.outcome == ACCOUNT_UNAVAILABLE and result.channel_blocked
    assert result.retry_at == store.row["flood_wait_until"] == T0 + datetime.timedelta(seconds=420)
    assert store.count == 0
    waiting = await worker.send("c", "u", "hi")
    assert waiting.error == "Telegram account is waiting out a flood limit" and waiting.retry_at == result.retry_at


async def test_peer_flood_puts_the_account_in_cooldown():
    store = MemoryStore()
    worker = account(store, ScriptedSender(SendResult("peer_flood", error="PEER_FLOOD")), pacing=(0, 0))
    first = await worker.send("c", "u", "hi")
    assert first.outcome == ACCOUNT_UNAVAILABLE and first.retry_at is None
    assert store.row["status"] == "cooldown"
    again = await worker.send("c", "u2", "hi")
    assert "cooldown" in again.error and again.retry_at is None


async def test_a_ban_takes_the_account_out():
    store = MemoryStore()
    worker = account(store, ScriptedSender(SendResult("banned", error="USER_DEACTIVATED_BAN")), pacing=(0, 0))
    assert (await worker.send("c", "u", "hi")).outcome == ACCOUNT_UNAVAILABLE
    assert store.row["status"] == "banned" and store.count == 0


async def test_lead_level_failures_pass_through_and_count():
    store = MemoryStore()
    worker = account(store, ScriptedSender(SendResult("privacy_restricted", error="privacy")), pacing=(0, 0))
    assert (await worker.send("c", "u", "hi")).outcome == "privacy_restricted"
    assert store.count == 1


async def test_nothing_is_sent_for_a_campaign_that_is_no_longer_active():
    sender = ScriptedSender()
    result = await account(MemoryStore(active=False), sender).send("c", "u", "hi")
    assert result.error == "Campaign is not active" and sender.sent == [] and result.retry_at is None
