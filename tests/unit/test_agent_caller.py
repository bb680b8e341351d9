"""AgentCaller driven directly with in-memory ports: what each way a call can go becomes for the campaign run."""
from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ElementTree

import pytest

from outreach.actors import senders, voice_line
from outreach.actors.voice_line import AgentCaller
from outreach.runtime import errors
from outreach.runtime.config import Settings
from outreach.runtime.ports import CallRequest

ORG = "0b0b0b0b-0000-0000-0000-000000000001"
LOG = "1c1c1c1c-0000-0000-0000-000000000002"
LEAD = {"id": "2d2d2d2d-0000-0000-0000-000000000003", "first_name": "Olha", "last_name": "K", "company": "Tea",
        "timezone": "Europe/Kyiv", "phone": "+380501112233", "email": "o@example.com"}
VOICE = {"voice_id": "sofia", "voice_name": None, "selected_voices": ["sofia"], "language": "en",
         "personality": "friendly", "speed": 1.1, "org_id": ORG}


class MemoryCalls:
    """The CallLogStore port: one call log, ended by `end()` as the status webhook would."""

    def __init__(self, existing: dict | None = None):
        self.row = existing
        self.discarded = False
        self.rung = asyncio.Event()

    async def open_call(self, number_id, call):
        if self.row is not None:
            return {**self.row, "created": False}
        self.row = {"id": LOG, "org_id": ORG, "provider_call_id": None, "status": "in_progress", "duration": None}
        return {**self.row, "created": True}

    async def attach_sid(self, opened, sid):
        self.row["provider_call_id"] = sid

    async def discard(self, opened):
        self.discarded = True

    async def state(self, opened):
        return dict(self.row)

    async def wait_for_end(self, sid, timeout):
        try:
            await asyncio.wait_for(self.rung.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def end(self, status: str, duration: int | None, ring: bool = True):
        self.row.update(status=status, duration=duration)
        if ring:
            self.rung.set()


class Agent:
    def __init__(self, failure: errors.ServiceError | None = None):
        self.failure = failure
        self.configs = []

    def stream_url(self):
        return "wss://agent.example.com/stream"

    async def prepare_call(self, config):
        if self.failure:
            raise self.failure
        self.configs.append(config)
        return {}


class Twilio:
    def __init__(self, failure: errors.ServiceError | None = None, on_dial=None):
        self.failure = failure
        self.on_dial = on_dial
        self.dialed = []

    async def place_call(self, to, from_number, twiml, status_callback, time_limit):
        if self.failure:
            raise self.failure
        self.dialed.append({"to": to, "from": from_number, "twiml": twiml, "callback": status_callback,
                            "time_limit": time_limit})
        if self.on_dial:
            self.on_dial()
        return "CA" + "9" * 32


def request() -> CallRequest:
    return CallRequest(to="+380501112233", from_number="+14155550101", lead=LEAD, script="Offer tea subscriptions",
                       objection_handlers=["too expensive: first month free"], voice=VOICE, campaign_id="camp-1",
                       lead_id=LEAD["id"])


def caller(calls, twilio, agent=None, wait_seconds: float = 5) -> AgentCaller:
    return AgentCaller("number-1", calls, twilio, agent or Agent(), "https://outreach.example.com/", wait_seconds, 600)


async def test_a_completed_call_reached_the_lead():
    calls = MemoryCalls()
    twilio = Twilio(on_dial=lambda: asyncio.get_running_loop().call_soon(calls.end, "completed", 95))
    agent = Agent()
    result = await caller(calls, twilio, agent).place_call(request())
    assert (result.outcome, result.ok, result.duration_seconds, result.provider_id, result.error) == (
        "sent", True, 95, "CA" + "9" * 32, None)
    [config] = agent.configs
    assert (config["callLogId"], config["orgId"], config["campaignId"], config["direction"]) == (
        LOG, ORG, "camp-1", "outbound")
    assert (config["script"], config["objectionHandlers"]) == ("Offer tea subscriptions",
                                                               ["too expensive: first month free"])
    assert config["voice"] == {"voiceId": "sofia", "voiceName": None, "selectedVoices": ["sofia"], "language": "en",
                               "personality": "friendly", "speed": 1.1}
    assert config["lead"] == {"id": LEAD["id"], "firstName": "Olha", "lastName": "K", "company": "Tea",
                              "timezone": "Europe/Kyiv"}  # no email or phone: the agent needs neither
    [dial] = twilio.dialed
    assert (dial["to"], dial["from"], dial["time_limit"]) == ("+380501112233", "+14155550101", 600)
    assert dial["callback"] == (f"https://outreach.example.com/api/webhook/twilio/status?orgId={ORG}"
                                f"&callLogId={LOG}")
    stream = ElementTree.fromstring(dial["twiml"]).find("./Connect/Stream")
    assert stream.get("url") == "wss://agent.example.com/stream"
    parameters = {item.get("name"): item.get("value") for item in stream.findall("Parameter")}
    assert parameters == {"callLogId": LOG, "orgId": ORG, "campaignId": "camp-1", "direction": "outbound",
                          "leadId": LEAD["id"]}
    assert "tea" not in dial["twiml"].lower()  # the script never travels in TwiML


@pytest.mark.parametrize("status, error", [("no_answer", "No answer"), ("busy", "Busy"),
                                           ("voicemail", "Voicemail"), ("failed", "Call failed")])
async def test_other_end_states_are_lead_level_failures(status, error):
    calls = MemoryCalls()
    twilio = Twilio(on_dial=lambda: calls.end(status, 20 if status == "voicemail" else None))
    result = await caller(calls, twilio).place_call(request())
    assert (result.outcome, result.error, result.channel_blocked) == (status, error, False)
    assert not calls.discarded


async def test_no_end_within_the_wait_is_unknown_and_never_redialed():
    calls = MemoryCalls()
    result = await caller(calls, Twilio(), wait_seconds=0.05).place_call(request())
    assert (result.outcome, result.provider_id, result.channel_blocked) == ("unknown", "CA" + "9" * 32, False)
    assert result.error == "No final call status from Twilio within 0.05 s"
    assert not calls.discarded  # a late callback still finds the log


async def test_a_lost_wake_up_is_caught_by_rereading_the_call(monkeypatch):
    monkeypatch.setattr(voice_line, "RECHECK_SECONDS", 0.01)
    calls = MemoryCalls()
    twilio = Twilio(on_dial=lambda: calls.end("busy", None, ring=False))
    assert (await caller(calls, twilio).place_call(request())).outcome == "busy"


async def test_a_redis_outage_while_waiting_falls_back_to_rereading_the_call(monkeypatch):
    monkeypatch.setattr(voice_line, "RECHECK_SECONDS", 0.01)
    calls = MemoryCalls()

    async def broken_wait(sid, timeout):
        raise ConnectionError("Connection closed by server")

    calls.wait_for_end = broken_wait
    twilio = Twilio(on_dial=lambda: calls.end("completed", 61, ring=False))
    result = await caller(calls, twilio).place_call(request())
    assert (result.outcome, result.duration_seconds) == ("sent", 61)


async def test_agent_unavailable_blocks_the_channel_and_dials_nothing():
    calls, twilio = MemoryCalls(), Twilio()
    agent = Agent(errors.ProviderError("Voice agent answered 503", status=503))
    result = await caller(calls, twilio, agent).place_call(request())
    assert (result.outcome, result.channel_blocked) == ("not_sent", True)
    assert result.error == "Voice agent unavailable: Voice agent answered 503"
    assert twilio.dialed == [] and calls.discarded


@pytest.mark.parametrize("failure, outcome, blocked, error", [
    (errors.Invalid("Invalid 'To' Phone Number: +1", status=400, code=21211), "failed", False,
     "Twilio refused the call: Invalid 'To' Phone Number: +1"),
    (errors.ProviderError("Authenticate", status=401, code=20003), "not_sent", True, "Twilio error: Authenticate"),
    (errors.ProviderError("Twilio request failed: timeout", status=None), "unknown", False,
     "Twilio did not confirm the call: Twilio request failed: timeout"),
])
async def test_twilio_refusals(failure, outcome, blocked, error):
    calls = MemoryCalls()
    result = await caller(calls, Twilio(failure)).place_call(request())
    assert (result.outcome, result.channel_blocked, result.error) == (outcome, blocked, error)
    assert calls.discarded  # no Call SID: the run records the attempt and its call log itself


async def test_the_same_call_run_again_waits_for_the_first_instead_of_dialing():
    calls = MemoryCalls({"id": LOG, "org_id": ORG, "provider_call_id": "CA1", "status": "completed", "duration": 30})
    twilio = Twilio()
    result = await caller(calls, twilio).place_call(request())
    assert (result.outcome, result.provider_id, result.duration_seconds) == ("sent", "CA1", 30)
    assert twilio.dialed == []


async def test_the_same_call_run_again_before_twilio_answered_is_unknown():
    calls = MemoryCalls({"id": LOG, "org_id": ORG, "provider_call_id": None, "status": "in_progress",
                         "duration": None})
    twilio = Twilio()
    result = await caller(calls, twilio).place_call(request())
    assert (result.outcome, result.error) == ("unknown", "Call outcome unknown after a restart")
    assert twilio.dialed == [] and calls.discarded


async def test_the_line_gets_a_caller_that_names_what_is_missing():
    twilio = {"twilio_account_sid": "AC1", "twilio_auth_token": "token"}
    without_twilio = await senders.voice_caller(Settings()).place_call(request())
    assert (without_twilio.outcome, without_twilio.channel_blocked, without_twilio.error) == (
        "not_sent", True, "Voice (Twilio) provider is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    without_agent = await senders.voice_caller(Settings(**twilio)).place_call(request())
    assert without_agent.error == ("Voice agent provider is not configured: set VOICE_AGENT_URL and "
                                   "VOICE_AGENT_SECRET")
    configured = senders.voice_caller(Settings(**twilio, voice_agent_url="https://agent.example.com",
                                              voice_agent_secret="s", voice_max_call_seconds=300), "number-1")
    assert isinstance(configured, AgentCaller)
    assert (configured.time_limit, configured.wait_seconds) == (300, 30 + 300 + 120)


def test_signature_check_refuses_odd_timestamps_without_raising():
    from outreach.runtime import agent_protocol

    for timestamp in ("²", "9" * 5000, "-1", "1e9", ""):
        assert agent_protocol.is_signed("secret", timestamp, "sig", b"{}", now=0) is False
