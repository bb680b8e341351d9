"""VoiceLine: one phone number; places its calls one at a time (configurable), each until the call ends."""
from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse

from outreach.actors.telegram_account import unavailable
from outreach.runtime import agent_protocol, errors
from outreach.runtime.models import CallStatus
from outreach.runtime.ports import CallRequest, SendResult, VoiceCaller

FINAL_STATUSES = frozenset(status.value for status in CallStatus if status is not CallStatus.IN_PROGRESS)
STATUS_CALLBACK_PATH = "/api/webhook/twilio/status"


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


# --- the real caller: Twilio dials, the voice agent talks, the status callback ends the call ---------------

END_ERRORS = {"no_answer": "No answer", "busy": "Busy", "voicemail": "Voicemail", "failed": "Call failed"}
log = logging.getLogger(__name__)
RECHECK_SECONDS = 30.0  # a lost wake-up (Redis restarted) delays the end by this much at most: PostgreSQL decides


class AgentCaller:
    """Places one campaign call from one line with the voice agent attached, and waits for the call's end.

    1. The call log is written before anything else: the webhooks (Twilio's status callback, the agent's
       report) always find it, and running the same call again after an actor restart finds it instead
       of dialing twice.
    2. The agent gets the call's script, objection handlers, voice and lead by a signed request, keyed by
       the call log id; Twilio gets TwiML that streams the answered call to the agent with only ids.
    3. The status callback (on any API replica) writes the end state to PostgreSQL and rings a Redis key
       named after the Call SID; this line blocks on that key, re-reading PostgreSQL at least every
       RECHECK_SECONDS. Without an end state after `wait_seconds`, the outcome is "unknown": the call
       may have happened, so it is never placed again for this campaign and lead (the attempt stays).

    `calls` is a storage.calls.CallLogStore, `twilio` a providers.twilio.Twilio, `agent` a
    providers.voice_agent.VoiceAgent.
    """

    def __init__(self, number_id, calls, twilio, agent, public_url: str, wait_seconds: float, time_limit: int):
        self.number_id = number_id
        self.calls = calls
        self.twilio = twilio
        self.agent = agent
        self.public_url = public_url.rstrip("/")
        self.wait_seconds = wait_seconds
        self.time_limit = time_limit

    async def place_call(self, call: CallRequest) -> SendResult:
        opened = await self.calls.open_call(self.number_id, call)
        if opened is None:
            return SendResult("not_sent", error="The phone number no longer serves this campaign",
                              channel_blocked=True)
        if not opened["created"]:
            return await self._resume(opened)
        refusal = await self._dial(opened, call)
        if refusal is not None:
            await self.calls.discard(opened)
            return refusal
        return await self._wait(opened)

    async def _dial(self, opened: dict, call: CallRequest) -> SendResult | None:
        """None once Twilio has the call; else why nothing (or maybe something) was dialed."""
        config = agent_protocol.call_config(
            {"call_log_id": opened["id"], "org_id": opened["org_id"], "direction": "outbound",
             "campaign_id": call.campaign_id, "to": call.to, "from": call.from_number},
            script=call.script, objection_handlers=call.objection_handlers, voice=call.voice, lead=call.lead)
        try:
            await self.agent.prepare_call(config)
        except errors.ServiceError as exc:
            return SendResult("not_sent", error=f"Voice agent unavailable: {exc.message}", channel_blocked=True)
        twiml = agent_protocol.stream_twiml(self.agent.stream_url(), agent_protocol.stream_parameters(config))
        try:
            sid = await self.twilio.place_call(call.to, call.from_number, twiml, self.status_url(opened),
                                               self.time_limit)
        except errors.Invalid as exc:  # this lead's number: the next channel may reach the lead
            return SendResult("failed", error=f"Twilio refused the call: {exc.message}")
        except errors.ServiceError as exc:
            if exc.details.get("status") is None:  # the request may have reached Twilio: never dial again
                return SendResult("unknown", error=f"Twilio did not confirm the call: {exc.message}")
            return SendResult("not_sent", error=f"Twilio error: {exc.message}", channel_blocked=True)
        opened["provider_call_id"] = sid
        await self.calls.attach_sid(opened, sid)
        return None

    def status_url(self, opened: dict) -> str:
        """Signed by Twilio along with the form, so the ids in the query cannot be forged."""
        query = urllib.parse.urlencode({"orgId": str(opened["org_id"]), "callLogId": str(opened["id"])})
        return f"{self.public_url}{STATUS_CALLBACK_PATH}?{query}"

    async def _resume(self, opened: dict) -> SendResult:
        if opened["provider_call_id"] is None:  # interrupted between writing the log and Twilio's answer
            await self.calls.discard(opened)
            return SendResult("unknown", error="Call outcome unknown after a restart")
        return await self._wait(opened)

    async def _wait(self, opened: dict) -> SendResult:
        sid = opened["provider_call_id"]
        deadline = time.monotonic() + self.wait_seconds
        while True:
            state = await self.calls.state(opened)
            if state is not None and state["status"] in FINAL_STATUSES:
                return ended_result(state)
            remaining = deadline - time.monotonic()
            if state is None or remaining <= 0:
                return SendResult("unknown", provider_id=sid,
                                  error=f"No final call status from Twilio within {self.wait_seconds:g} s")
            try:
                await self.calls.wait_for_end(sid, min(remaining, RECHECK_SECONDS))
            except Exception:  # the wake-up (Redis) is a shortcut; PostgreSQL decides: re-read it later
                log.warning("call %s: waiting for its end failed; re-checking the database", sid, exc_info=True)
                await asyncio.sleep(min(remaining, RECHECK_SECONDS))


def ended_result(state: dict) -> SendResult:
    """A completed call reached the lead ("sent"); the other end states are lead-level failures."""
    status, duration = state["status"], state["duration"] or 0
    outcome = "sent" if status == "completed" else status
    return SendResult(outcome, provider_id=state["provider_call_id"], error=END_ERRORS.get(status),
                      duration_seconds=duration)
