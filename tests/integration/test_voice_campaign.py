"""A voice campaign executed on Ray with the real Twilio SDK and voice agent client pointed at local fakes.

The test plays Twilio: when the fake receives a call it posts the signed status callbacks Twilio would
send to the app, and plays the voice agent by posting its signed end-of-call report. The voice line
actor, waiting in its own process, is woken by the callback through Redis.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import zoneinfo
import xml.etree.ElementTree as ElementTree

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.actors import remote
from outreach.http.app import Deps, build_app
from outreach.runtime.config import Settings
from outreach.providers.voice_agent import VoiceAgent
from tests.conftest import TEST_REDIS_URL, TEST_RUNNER_OPTIONS, Api, tenant_on
from tests.factories import insert_number
from tests.fakes.twilio import FakeTwilio, call_fields, post_status, twilio_port
from tests.fakes.voice_agent import FakeVoiceAgent

PUBLIC_URL = "https://outreach.example.com"


def daytime_zone() -> str:
    """A zone where it is mid-day now: calls never go out before 08:00 or after 21:00 local, whatever the
    campaign says, so a test that must call now puts its leads where it is day."""
    now = datetime.datetime.now(datetime.timezone.utc)
    for offset in range(-12, 15):  # Etc/GMT-3 is UTC+3: the sign is POSIX's
        zone = f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
        if 10 <= now.astimezone(zoneinfo.ZoneInfo(zone)).hour < 18:
            return zone
    raise AssertionError("no zone is at mid-day")  # unreachable: the offsets cover the day


ALL_DAY = {"timezone": daytime_zone(), "callingWindow": {"start": "08:00", "end": "21:00"}}
# How each lead's call goes, by the number called: (Twilio's final status, seconds, AnsweredBy)
SCRIPTED = {"+380501110001": ("completed", 75, "human"), "+380501110002": ("completed", 30, "human"),
            "+380501110003": ("no-answer", None, None), "+380501110004": ("completed", 25, "machine_end_beep")}




@pytest.fixture
async def voice_api(ray_cluster, settings, pool, redis, fake_twilio, fake_agent):
    """A tenant of an app whose campaigns run on Ray with Twilio and the voice agent configured (no sandbox)."""
    voice = dict(twilio_account_sid=fake_twilio.account_sid, twilio_auth_token=fake_twilio.auth_token,
                 twilio_base_url=fake_twilio.url(), voice_agent_url=fake_agent.url(),
                 voice_agent_secret=fake_agent.secret, public_url=PUBLIC_URL)
    actor_settings = Settings(database_url=settings.database_url, redis_url=TEST_REDIS_URL,
                              secret_key="test-secret", **voice)
    deps = Deps(pool=pool, redis=redis, runtime=remote.RayRuntime(actor_settings, TEST_RUNNER_OPTIONS),
                twilio=twilio_port(fake_twilio), voice_agent=VoiceAgent(fake_agent.url(), fake_agent.secret))
    client = TestClient(TestServer(build_app(dataclasses.replace(settings, **voice), deps), host="127.0.0.1"))
    await client.start_server()
    yield await tenant_on(client, pool, "dialers", plan="starter")
    await client.close()


async def voice_campaign(api: Api, pool, fake_twilio) -> str:
    script = (await api.post("/api/dashboard/scripts", json={
        "name": "tea", "content": "Offer the tea subscription; book a tasting.",
        "objectionHandlers": ["too expensive: the first month is free"]})).body
    await api.put("/api/dashboard/voice", json={"selectedVoices": ["sofia"], "language": "en"})
    campaign = (await api.post("/api/dashboard/campaigns", json={
        "name": "calls", "channels": ["voice"], "channelPriority": ["voice"], "scriptId": script["id"],
        "settings": ALL_DAY})).body
    lead_ids = []
    for index, phone in enumerate(SCRIPTED, start=1):
        lead = (await api.post("/api/dashboard/leads", json={"firstName": f"Lead{index}", "phone": phone,
                                                             "company": "Tea Co"})).body
        lead_ids.append(lead["id"])
    assigned = await api.post(f"/api/dashboard/campaigns/{campaign['id']}/leads", json={"leadIds": lead_ids})
    assert assigned.status == 200
    fake_twilio.own("+14155550101")
    await insert_number(pool, api.org_id, number="+14155550101", provider_sid="PN1", campaign_id=campaign["id"])
    return campaign["id"]


async def play_twilio(api: Api, fake_twilio: FakeTwilio, fake_agent: FakeVoiceAgent, count: int) -> list[dict]:
    """Answer each call the fake receives the way its lead's script says, as Twilio and the agent would."""
    placed = []
    for _ in range(count):
        call = await asyncio.wait_for(fake_twilio.placed.get(), 60)
        placed.append(call)
        form, sid = call["form"], call["sid"]
        status, seconds, answered_by = SCRIPTED[form["To"]]
        callback = form["StatusCallback"]
        for progress in ("initiated", "ringing"):
            assert (await post_status(api.http, fake_twilio, callback, call_fields(sid, progress)))[0] == 204
        if status == "completed":
            assert (await post_status(api.http, fake_twilio, callback, call_fields(sid, "in-progress")))[0] == 204
            await report_conversation(api, fake_agent, callback, form)
        final = call_fields(sid, status, **({"CallDuration": str(seconds)} if seconds is not None else {}),
                            **({"AnsweredBy": answered_by} if answered_by else {}))
        assert (await post_status(api.http, fake_twilio, callback, final))[0] == 204
    return placed


async def report_conversation(api: Api, fake_agent: FakeVoiceAgent, callback: str, form: dict) -> None:
    parameters = stream_parameters(form["Twiml"])
    report = {"callLogId": parameters["callLogId"], "orgId": parameters["orgId"],
              "transcript": [{"role": "assistant", "content": "Hello from Tea Co!"},
                             {"role": "user", "content": "Sounds good, book me."}],
              "summary": f"Booked a tasting ({form['To']})", "sentiment": "positive", "score": 90}
    body, headers = fake_agent.signed_report(report)
    async with api.http.post("/api/webhook/voice-agent", data=body, headers=headers) as response:
        assert response.status == 200, await response.text()


def stream_parameters(twiml: str) -> dict:
    stream = ElementTree.fromstring(twiml).find("./Connect/Stream")
    return {item.get("name"): item.get("value") for item in stream.findall("Parameter")}


async def wait_for_status(pool, campaign_id: str, wanted: str, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1::uuid", campaign_id) != wanted:
            await asyncio.sleep(0.05)


async def test_a_voice_campaign_calls_each_lead_and_records_the_calls(voice_api, pool, fake_twilio, fake_agent):
    campaign_id = await voice_campaign(voice_api, pool, fake_twilio)
    reply = await voice_api.post(f"/api/dashboard/campaigns/{campaign_id}/execute?wait=false")
    assert reply.status == 202, reply.body
    placed = await play_twilio(voice_api, fake_twilio, fake_agent, len(SCRIPTED))
    await wait_for_status(pool, campaign_id, "completed")

    # what Twilio was asked
    assert sorted(call["form"]["To"] for call in placed) == sorted(SCRIPTED)
    form = placed[0]["form"]
    assert (form["From"], form["MachineDetection"], form["StatusCallbackMethod"], form["TimeLimit"]) == (
        "+14155550101", "Enable", "POST", "600")
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["StatusCallback"].startswith(PUBLIC_URL + "/api/webhook/twilio/status?orgId=")
    assert "tea" not in form["Twiml"].lower()  # only ids travel with the call
    # what the agent was given, per call, before the dial
    config = fake_agent.calls[stream_parameters(form["Twiml"])["callLogId"]]
    assert (config["script"], config["objectionHandlers"], config["voice"]["voiceId"], config["voice"]["language"],
            config["orgId"], config["campaignId"]) == (
        "Offer the tea subscription; book a tasting.", ["too expensive: the first month is free"], "sofia", "en",
        str(voice_api.org_id), campaign_id)
    assert len(fake_agent.calls) == len(SCRIPTED)

    # call logs: one per lead, ended by the callbacks, with the agent's report
    logs = {row["to_number"]: dict(row) for row in await pool.fetch(
        """SELECT to_number, status::text, duration, provider_call_id, summary, transcript, phone_number_id,
                  from_number FROM call_logs WHERE campaign_id = $1::uuid""", campaign_id)}
    assert {to: (log["status"], log["duration"]) for to, log in logs.items()} == {
        "+380501110001": ("completed", 75), "+380501110002": ("completed", 30),
        "+380501110003": ("no_answer", None), "+380501110004": ("voicemail", 25)}
    assert logs["+380501110001"]["summary"] == "Booked a tasting (+380501110001)"
    assert logs["+380501110001"]["transcript"][1] == {"role": "user", "content": "Sounds good, book me."}
    assert {log["from_number"] for log in logs.values()} == {"+14155550101"}
    assert all(log["provider_call_id"].startswith("CA") and log["phone_number_id"] for log in logs.values())
    calls_page = (await voice_api.get("/api/dashboard/calls")).body
    assert calls_page["pagination"]["total"] == len(SCRIPTED)

    # the run: two reached, one not answered, one voicemail; minutes of the conversations counted
    states = {row["phone"]: (row["state"], row["status"]) for row in await pool.fetch(
        """SELECT l.phone, cl.state::text, l.status::text FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id
           WHERE cl.campaign_id = $1::uuid""", campaign_id)}
    # every answered call's report scored 90 (>= the default qualifyScore 0.7): those leads are qualified
    assert states == {"+380501110001": ("sent", "qualified"), "+380501110002": ("sent", "qualified"),
                      "+380501110003": ("failed", "new"), "+380501110004": ("failed", "qualified")}
    usage = (await voice_api.get("/api/dashboard/billing/usage")).body
    assert usage["minutes"] == 3  # 75 s -> 2 minutes, 30 s -> 1 minute
    outcomes = sorted(row["outcome"] for row in await pool.fetch(
        "SELECT outcome FROM attempts WHERE campaign_id = $1::uuid AND channel = 'voice'", campaign_id))
    assert outcomes == ["no_answer", "sent", "sent", "voicemail"]


async def test_a_voice_campaign_never_calls_a_phone_on_the_do_not_contact_list(voice_api, pool, fake_twilio,
                                                                                fake_agent):
    campaign_id = await voice_campaign(voice_api, pool, fake_twilio)
    listed = (await voice_api.post("/api/dashboard/leads", json={"firstName": "Listed", "phone": "+380501110009",
                                                                 "company": "Tea Co"})).body
    assert (await voice_api.post(f"/api/dashboard/campaigns/{campaign_id}/leads",
                                 json={"leadIds": [listed["id"]]})).status == 200
    suppressed = await voice_api.post("/api/dashboard/suppressions",  # another form of the same number
                                      json={"type": "phone", "value": "00380 50 111 0009"})
    assert suppressed.status == 201, suppressed.body
    reply = await voice_api.post(f"/api/dashboard/campaigns/{campaign_id}/execute?wait=false")
    assert reply.status == 202, reply.body
    placed = await play_twilio(voice_api, fake_twilio, fake_agent, len(SCRIPTED))
    await wait_for_status(pool, campaign_id, "completed")
    assert sorted(call["form"]["To"] for call in placed) == sorted(SCRIPTED) and fake_twilio.placed.empty()
    state = await pool.fetchrow("SELECT state::text, error FROM campaign_leads WHERE lead_id = $1::uuid", listed["id"])
    assert (state["state"], state["error"]) == ("skipped", "Lead is on the do-not-contact list")
    assert await pool.fetchval("SELECT count(*) FROM call_logs WHERE to_number = '+380501110009'") == 0
