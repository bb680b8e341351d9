"""TelegramAccount driven directly, with in-memory ports that record calls."""
from __future__ import annotations

import random

from outreach.actors.telegram_account import ACCOUNT_UNAVAILABLE, TelegramAccount
from outreach.runtime.ports import SendResult


class MemoryStore:
    def __init__(self, limit: int = 3, active: bool = True):
        self.limit, self.count, self.active = limit, 0, active
        self.status, self.flood_wait = "active", None

    async def campaign_active(self, campaign_id) -> bool:
        return self.active

    async def take_daily_slot(self, account_id):
        if self.status != "active":
            return f"Telegram account is {self.status}"
        if self.count >= self.limit:
            return "Telegram account daily limit reached"
        self.count += 1
        return None

    async def return_daily_slot(self, account_id) -> None:
        self.count -= 1

    async def set_flood_wait(self, account_id, seconds: int) -> None:
        self.flood_wait = seconds

    async def set_status(self, account_id, status: str) -> None:
        self.status = status


class ScriptedSender:
    def __init__(self, *results: SendResult):
        self.results, self.sent = list(results), []

    async def send_message(self, username: str, text: str) -> SendResult:
        self.sent.append((username, text))
        return self.results.pop(0) if self.results else SendResult("sent", provider_id="m1")


class FakeClock:
    def __init__(self):
        self.now, self.slept = 100.0, []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def account(store, sender, clock=None, pacing=(30, 90)):
    clock = clock or FakeClock()
    return TelegramAccount("acc", store, sender, pacing, random.Random(1), clock=clock, sleep=clock.sleep)


async def test_daily_limit_is_enforced():
    store, sender = MemoryStore(limit=2), ScriptedSender()
    worker = account(store, sender, pacing=(0, 0))
    outcomes = [(await worker.send("c", f"u{i}", "hi")).outcome for i in range(3)]
    assert outcomes == ["sent", "sent", ACCOUNT_UNAVAILABLE]
    assert len(sender.sent) == 2


async def test_sends_are_paced_with_jitter_between_30_and_90_seconds():
    clock = FakeClock()
    worker = account(MemoryStore(limit=10), ScriptedSender(), clock)
    for index in range(3):
        await worker.send("c", f"u{index}", "hi")
    assert len(clock.slept) == 2 and all(30 <= gap <= 90 for gap in clock.slept)
    assert clock.slept[0] != clock.slept[1]


async def test_flood_wait_pauses_the_account_and_does_not_count():
    store = MemoryStore()
    worker = account(store, ScriptedSender(SendResult("flood_wait", error="FLOOD_WAIT_420", retry_after=420)))
    result = await worker.send("c", "u", "hi")
    assert result.outcome == ACCOUNT_UNAVAILABLE and result.channel_blocked
    assert store.flood_wait == 420 and store.count == 0


async def test_peer_flood_puts_the_account_in_cooldown():
    store = MemoryStore()
    worker = account(store, ScriptedSender(SendResult("peer_flood", error="PEER_FLOOD")), pacing=(0, 0))
    assert (await worker.send("c", "u", "hi")).outcome == ACCOUNT_UNAVAILABLE
    assert store.status == "cooldown"
    assert "cooldown" in (await worker.send("c", "u2", "hi")).error


async def test_lead_level_failures_pass_through_and_count():
    store = MemoryStore()
    worker = account(store, ScriptedSender(SendResult("privacy_restricted", error="privacy")), pacing=(0, 0))
    assert (await worker.send("c", "u", "hi")).outcome == "privacy_restricted"
    assert store.count == 1


async def test_nothing_is_sent_for_a_campaign_that_is_no_longer_active():
    sender = ScriptedSender()
    result = await account(MemoryStore(active=False), sender).send("c", "u", "hi")
    assert result.error == "Campaign is not active" and sender.sent == []
