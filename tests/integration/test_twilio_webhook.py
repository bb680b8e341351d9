"""Twilio's webhooks: status callbacks that end calls, and incoming calls, verified with X-Twilio-Signature."""
from __future__ import annotations

import asyncio
import dataclasses
import uuid
import xml.etree.ElementTree as ElementTree

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.voice_agent import VoiceAgent
from outreach.storage import calls
from tests.factories import insert_call, insert_lead, insert_number
from tests.fakes.twilio import FakeTwilio, call_fields, post_status, twilio_port

PUBLIC_URL = "https://outreach.example.com"
STATUS = PUBLIC_URL + "/api/webhook/twilio/status"
VOICE = PUBLIC_URL + "/api/webhook/twilio/voice"




@pytest.fixture
async def hooks(settings, pool, redis, fake_twilio, fake_agent):
    """A client of the app as Twilio reaches it (through a proxy: the public URL differs from the local one)."""
    settings = dataclasses.replace(settings, twilio_account_sid=fake_twilio.account_sid,
                                   twilio_auth_token=fake_twilio.auth_token, public_url=PUBLIC_URL,
                                   voice_agent_url=fake_agent.url(), voice_agent_secret=fake_agent.secret)
    deps = Deps(pool=pool, redis=redis, twilio=twilio_port(fake_twilio),
                voice_agent=VoiceAgent(fake_agent.url(), fake_agent.secret))
    client = TestClient(TestServer(build_app(settings, deps), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def open_call(pool, org_id, **values) -> dict:
    """A campaign call in progress, as a voice line writes it before dialing."""
    return await insert_call(pool, org_id, status="in_progress", **values)


def status_url(org_id, call_id=None) -> str:
    return f"{STATUS}?orgId={org_id}" + (f"&callLogId={call_id}" if call_id else "")


async def row(pool, call_id) -> dict:
    return dict(await pool.fetchrow("SELECT status::text, duration, provider_call_id, ended_at, metadata "
                                    "FROM call_logs WHERE id = $1", call_id))


async def test_status_callbacks_drive_the_call_to_its_end_and_wake_the_line(hooks, fake_twilio, api, pool, redis):
    call = await open_call(pool, api.org_id)
    url, sid = status_url(api.org_id, call["id"]), "CA" + "1" * 32
    waiting = asyncio.create_task(calls.wait_call_end(redis, sid, 10))
    for status in ("initiated", "ringing", "in-progress"):
        assert (await post_status(hooks, fake_twilio, url, call_fields(sid, status)))[0] == 204
        assert (await row(pool, call["id"]))["status"] == "in_progress"
    assert not waiting.done()
    reply = await post_status(hooks, fake_twilio, url, call_fields(sid, "completed", CallDuration="75",
                                                                   AnsweredBy="human"))
    assert reply[0] == 204
    assert await asyncio.wait_for(waiting, 5) is True
    ended = await row(pool, call["id"])
    assert (ended["status"], ended["duration"], ended["provider_call_id"]) == ("completed", 75, sid)
    assert ended["ended_at"] is not None and ended["metadata"] == {"answeredBy": "human"}


@pytest.mark.parametrize("twilio_status, extra, expected", [
    ("busy", {}, "busy"),
    ("no-answer", {}, "no_answer"),
    ("failed", {}, "failed"),
    ("canceled", {}, "failed"),
    ("completed", {"AnsweredBy": "machine_end_beep", "CallDuration": "31"}, "voicemail"),
    ("completed", {"AnsweredBy": "fax", "CallDuration": "3"}, "voicemail"),
    ("completed", {"AnsweredBy": "unknown", "CallDuration": "12"}, "completed"),
])
async def test_end_states(hooks, fake_twilio, api, pool, twilio_status, extra, expected):
    call = await open_call(pool, api.org_id)
    fields = call_fields("CA" + uuid.uuid4().hex, twilio_status, **extra)
    assert (await post_status(hooks, fake_twilio, status_url(api.org_id, call["id"]), fields))[0] == 204
    assert (await row(pool, call["id"]))["status"] == expected


async def test_unsigned_or_badly_signed_callbacks_are_refused(hooks, fake_twilio, api, pool):
    call = await open_call(pool, api.org_id)
    url, fields = status_url(api.org_id, call["id"]), call_fields("CA" + "2" * 32, "completed", CallDuration="9")
    for signature in ("bad", None):
        status, text = await post_status(hooks, fake_twilio, url, fields, signature=signature)
        assert (status, text) == (401, '{"error":"Invalid Twilio signature"}')
    # signed for one organization, sent for another: the query is part of what Twilio signs
    other_url = status_url(uuid.uuid4(), call["id"])
    headers = fake_twilio.signed(url, fields)
    async with hooks.post(other_url.removeprefix(PUBLIC_URL), data=fields, headers=headers) as response:
        assert response.status == 401
    # a field changed after signing
    async with hooks.post(url.removeprefix(PUBLIC_URL), data={**fields, "CallDuration": "900"},
                          headers=headers) as response:
        assert response.status == 401
    # signed with another account's token
    stranger = FakeTwilio(auth_token="not-our-token")
    async with hooks.post(url.removeprefix(PUBLIC_URL), data=fields, headers=stranger.signed(url, fields)) as response:
        assert response.status == 401
    assert (await row(pool, call["id"]))["status"] == "in_progress"
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0


async def test_a_replayed_callback_changes_nothing(hooks, fake_twilio, api, pool, redis):
    call = await open_call(pool, api.org_id)
    url, sid = status_url(api.org_id, call["id"]), "CA" + "3" * 32
    completed = call_fields(sid, "completed", CallDuration="40")
    for _ in range(3):
        assert (await post_status(hooks, fake_twilio, url, completed))[0] == 204
    assert await redis.llen(calls.end_key(sid)) == 1
    # a late, contradicting status for a call already ended is ignored too
    assert (await post_status(hooks, fake_twilio, url, call_fields(sid, "busy")))[0] == 204
    ended = await row(pool, call["id"])
    assert (ended["status"], ended["duration"]) == ("completed", 40)
    assert await pool.fetchval("SELECT count(*) FROM webhook_events WHERE provider = 'twilio'") == 2


async def test_a_callback_for_another_orgs_call_changes_nothing(hooks, fake_twilio, api, other, pool):
    call = await open_call(pool, api.org_id)
    url = status_url(other.org_id, call["id"])  # properly signed, but the call is not the other org's
    fields = call_fields("CA" + "4" * 32, "completed", CallDuration="5")
    assert (await post_status(hooks, fake_twilio, url, fields))[0] == 204
    assert (await row(pool, call["id"]))["status"] == "in_progress"


async def test_bad_callbacks_are_400(hooks, fake_twilio, api, pool):
    call = await open_call(pool, api.org_id)
    cases = [(status_url(api.org_id, call["id"]), {"CallStatus": "completed"}, "Missing CallSid"),
             (status_url(api.org_id, call["id"]), {"CallSid": "CA1"}, "Missing CallStatus"),
             (f"{STATUS}?callLogId={call['id']}", call_fields("CA1", "completed"), "orgId must be a UUID"),
             (f"{STATUS}?orgId=nope", call_fields("CA1", "completed"), "orgId must be a UUID"),
             (status_url(api.org_id, "nope"), call_fields("CA1", "completed"), "callLogId must be a UUID")]
    for url, fields, message in cases:
        status, text = await post_status(hooks, fake_twilio, url, fields)
        assert (status, text) == (400, f'{{"error":"{message}"}}'), (url, fields)
    async with hooks.post("/api/webhook/twilio/status?orgId=" + str(api.org_id), json={"CallSid": "CA1"}) as response:
        assert response.status == 400
    assert (await row(pool, call["id"]))["status"] == "in_progress"


async def test_without_twilio_credentials_callbacks_are_refused(http, api, pool):
    call = await open_call(pool, api.org_id)
    async with http.post(f"/api/webhook/twilio/status?orgId={api.org_id}&callLogId={call['id']}",
                         data=call_fields("CA1", "completed")) as response:
        assert response.status == 503
        assert (await response.json())["error"].startswith("Twilio is not configured")


async def test_incoming_call_is_logged_and_connected_to_the_agent(hooks, fake_twilio, fake_agent, api, pool):
    await pool.execute("UPDATE organizations SET plan = 'starter' WHERE id = $1", api.org_id)  # minutes to take it
    number = await insert_number(pool, api.org_id, number="+14155550123")
    lead = await insert_lead(pool, api.org_id, first_name="Olha", phone="+380501112233", company="Lviv Tea")
    await api.post("/api/dashboard/scripts", json={"name": "old", "content": "old pitch"})
    await api.post("/api/dashboard/scripts", json={"name": "new", "content": "new pitch",
                                                   "objectionHandlers": ["too expensive"]})
    sid, url = "CA" + "5" * 32, f"{VOICE}?orgId={api.org_id}"
    fields = {"CallSid": sid, "From": "+380501112233", "To": "+14155550123", "CallStatus": "ringing",
              "Direction": "inbound"}
    for _ in range(2):  # Twilio asking twice gets the same call
        async with hooks.post(url.removeprefix(PUBLIC_URL), data=fields, headers=fake_twilio.signed(url, fields)) as r:
            assert r.status == 200 and r.content_type == "text/xml"
            twiml = ElementTree.fromstring(await r.text())
    stream = twiml.find("./Connect/Stream")
    assert stream.get("url") == fake_agent.url("/stream").replace("http://", "ws://")
    parameters = {item.get("name"): item.get("value") for item in stream.findall("Parameter")}
    call_id = await pool.fetchval("SELECT id FROM call_logs WHERE provider_call_id = $1", sid)
    assert parameters == {"callLogId": str(call_id), "orgId": str(api.org_id), "direction": "inbound",
                          "leadId": str(lead["id"])}
    logged = await pool.fetchrow("SELECT * FROM call_logs WHERE id = $1", call_id)
    assert (logged["direction"], logged["status"], logged["phone_number_id"], logged["lead_id"],
            logged["from_number"], logged["to_number"]) == (
        "inbound", "in_progress", number["id"], lead["id"], "+380501112233", "+14155550123")
    config = fake_agent.calls[str(call_id)]
    assert (config["script"], config["objectionHandlers"]) == ("new pitch", ["too expensive"])
    assert (config["voice"]["language"], config["lead"]["firstName"]) == ("uk", "Olha")
    # its end counts its minutes (campaign calls count theirs with the run)
    ended = call_fields(sid, "completed", CallDuration="61", Direction="inbound")
    assert (await post_status(hooks, fake_twilio, f"{STATUS}?orgId={api.org_id}", ended))[0] == 204
    assert (await row(pool, call_id))["status"] == "completed"
    assert await pool.fetchval("SELECT minutes FROM usage WHERE org_id = $1", api.org_id) == 2


async def test_incoming_call_without_the_agent_or_to_an_unknown_number_hangs_up(hooks, fake_twilio, fake_agent, api,
                                                                                  other, pool):
    await insert_number(pool, api.org_id, number="+14155550124")
    await pool.execute("UPDATE organizations SET plan = 'starter'")  # minutes to take it
    fake_agent.refuse_next(503, "overloaded")
    for org_id, to in ((api.org_id, "+14155550124"), (other.org_id, "+14155550124")):
        url = f"{VOICE}?orgId={org_id}"
        fields = {"CallSid": "CA" + uuid.uuid4().hex, "From": "+15550001111", "To": to}
        async with hooks.post(url.removeprefix(PUBLIC_URL), data=fields, headers=fake_twilio.signed(url, fields)) as r:
            twiml = ElementTree.fromstring(await r.text())
        assert r.status == 200 and twiml.find("Hangup") is not None and twiml.find("Connect") is None
    assert await pool.fetchval("SELECT count(*) FROM call_logs WHERE org_id = $1", other.org_id) == 0
