"""Sandbox providers: simulated voice, Telegram and email with latency and a seeded outcome mix.

A product feature for demos and benchmarks, labelled as sandbox in the API. The outcome of a send is
a function of the seed and the send's idempotency key, so a run is reproducible whatever the order
in which concurrent sends finish.
"""
from __future__ import annotations

import asyncio
import hashlib
import random

from outreach.runtime.ports import CallRequest, OutboundEmail, SendResult

DEFAULT_MIXES = {
    "email": {"sent": 0.9, "bounced": 0.1},
    "telegram": {"sent": 0.8, "privacy_restricted": 0.12, "username_not_found": 0.08},
    "voice": {"sent": 0.6, "no_answer": 0.3, "busy": 0.1},
}
ERRORS = {
    "bounced": "Email bounced",
    "privacy_restricted": "The user's privacy settings forbid messages",
    "username_not_found": "Telegram username not found",
    "no_answer": "No answer",
    "busy": "Busy",
}


class SandboxOutcomes:
    def __init__(self, channel: str, seed: int = 7, latency: float = 0.0, mix: dict[str, float] | None = None):
        self.channel = channel
        self.seed = seed
        self.latency = latency
        self.outcomes, self.weights = zip(*(mix or DEFAULT_MIXES[channel]).items())

    async def result_for(self, key: str) -> SendResult:
        if self.latency:
            await asyncio.sleep(self.latency)  # simulated provider latency
        digest = hashlib.blake2b(f"{self.seed}:{self.channel}:{key}".encode(), digest_size=8).digest()
        outcome = random.Random(digest).choices(self.outcomes, self.weights)[0]
        provider_id = f"sandbox_{self.channel}_{digest.hex()}"
        if outcome == "sent":
            duration = 30 + digest[0] if self.channel == "voice" else 0
            return SendResult("sent", provider_id=provider_id, duration_seconds=duration)
        return SendResult(outcome, provider_id=provider_id, error=ERRORS.get(outcome, outcome))


class SandboxEmail:
    def __init__(self, outcomes: SandboxOutcomes):
        self.outcomes = outcomes

    async def send_email(self, email: OutboundEmail, idempotency_key: str, still_wanted=None) -> SendResult:
        return await self.outcomes.result_for(idempotency_key)


class SandboxTelegram:
    def __init__(self, outcomes: SandboxOutcomes):
        self.outcomes = outcomes

    async def send_message(self, username: str, text: str) -> SendResult:
        return await self.outcomes.result_for(username.lower())


class SandboxVoice:
    def __init__(self, outcomes: SandboxOutcomes):
        self.outcomes = outcomes

    async def place_call(self, call: CallRequest) -> SendResult:
        return await self.outcomes.result_for(f"{call.campaign_id}:{call.lead_id}")
