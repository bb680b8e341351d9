"""The voice agent's end-of-call webhook: HMAC-SHA256 over timestamp and body, 300 s tolerance, replays ignored."""
from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from tests.factories import insert_call
from tests.fakes.voice_agent import SECRET, FakeVoiceAgent, signature

HOOK = "/api/webhook/voice-agent"
TRANSCRIPT = [{"role": "assistant", "content": "Hello, this is Olena from Acme."},
              {"role": "user", "content": "Hi! Tell me more."}]


@pytest.fixture
async def hooks(settings, pool, redis):
    settings = dataclasses.replace(settings, voice_agent_url="http://127.0.0.1:9", voice_agent_secret=SECRET)
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
def agent() -> FakeVoiceAgent:
    """Only its signing is used here: it posts as the agent does."""
    return FakeVoiceAgent()


def full_report(call, **changes) -> dict:
    return {"callLogId": str(call["id"]), "orgId": str(call["org_id"]), "transcript": TRANSCRIPT,
            "summary": "Interested, wants a demo on Friday.", "sentiment": "positive", "sentimentScore": 0.8,
            "score": 87, "recordingUrl": "https://recordings.example.com/ca1.mp3", **changes}


async def post(hooks, body: bytes, headers: dict):
    async with hooks.post(HOOK, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def stored(pool, call_id) -> dict:
    row = await pool.fetchrow("""SELECT transcript, transcription, summary, sentiment::text, sentiment_score, score,
                                        recording_url, status::text FROM call_logs WHERE id = $1""", call_id)
    return dict(row)


async def test_a_signed_report_is_stored_in_the_call_log(hooks, agent, api, pool):
    call = await insert_call(pool, api.org_id, status="in_progress")
    status, body = await post(hooks, *agent.signed_report(full_report(call)))
    assert (status, body) == (200, {"success": True, "callId": str(call["id"]), "qualified": False,
                                    "suppressed": False})  # a call of no lead: no lead to qualify
    row = await stored(pool, call["id"])
    assert row["transcript"] == TRANSCRIPT
    assert row["transcription"] == "assistant: Hello, this is Olena from Acme.\nuser: Hi! Tell me more."
    assert (row["summary"], row["sentiment"], round(row["sentiment_score"], 2), row["score"], row["recording_url"]) == (
        "Interested, wants a demo on Friday.", "positive", 0.8, 87, "https://recordings.example.com/ca1.mp3")
    assert row["status"] == "in_progress"  # the call's status is Twilio's to tell
    detail = (await api.get(f"/api/dashboard/calls/{call['id']}")).body
    assert (detail["summary"], detail["sentiment"], detail["score"], detail["transcript"]) == (
        "Interested, wants a demo on Friday.", "positive", 87, TRANSCRIPT)


async def test_a_partial_report_keeps_what_it_does_not_mention(hooks, agent, api, pool):
    call = await insert_call(pool, api.org_id)
    await post(hooks, *agent.signed_report(full_report(call)))
    report = {"callLogId": str(call["id"]), "orgId": str(api.org_id), "recordingUrl": "https://r.example.com/2.mp3"}
    assert (await post(hooks, *agent.signed_report(report)))[0] == 200
    row = await stored(pool, call["id"])
    assert row["recording_url"] == "https://r.example.com/2.mp3" and row["summary"].startswith("Interested")


async def test_unsigned_badly_signed_or_stale_reports_are_refused(hooks, agent, api, pool):
    call = await insert_call(pool, api.org_id, summary="before")
    report = full_report(call, summary="forged")
    now = int(time.time())
    body, headers = agent.signed_report(report)
    attempts = [
        agent.signed_report(report, secret="another-secret"),
        agent.signed_report(report, timestamp=now - 301),  # stale
        agent.signed_report(report, timestamp=now + 301),  # from the future
        (body, {**headers, "X-Outreach-Signature": ""}),
        (body, {key: value for key, value in headers.items() if key != "X-Outreach-Timestamp"}),
        (body, {key: value for key, value in headers.items() if not key.startswith("X-Outreach")}),
        (body, {**headers, "X-Outreach-Timestamp": "soon"}),
        (body.replace(b"forged", b"FORGED"), headers),  # the body changed after signing
    ]
    for attempt_body, attempt_headers in attempts:
        assert await post(hooks, attempt_body, attempt_headers) == (401, {"error": "Invalid voice agent signature"})
    assert (await stored(pool, call["id"]))["summary"] == "before"
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0
    # within the tolerance a slightly old report is fine
    assert (await post(hooks, *agent.signed_report(report, timestamp=now - 200)))[0] == 200


async def test_a_replayed_report_changes_nothing(hooks, agent, api, pool):
    call = await insert_call(pool, api.org_id)
    first = agent.signed_report(full_report(call, summary="first"), timestamp=int(time.time()) - 1)
    assert (await post(hooks, *first))[0] == 200
    assert (await post(hooks, *agent.signed_report(full_report(call, summary="second"))))[0] == 200
    assert await post(hooks, *first) == (200, {"success": True, "duplicate": True})
    assert (await stored(pool, call["id"]))["summary"] == "second"


async def test_a_report_for_another_orgs_call_is_not_found(hooks, agent, api, other, pool):
    call = await insert_call(pool, api.org_id, summary="mine")
    for report in (full_report(call, orgId=str(other.org_id)), full_report(call, callLogId=str(uuid.uuid4()))):
        assert await post(hooks, *agent.signed_report(report)) == (404, {"error": "Call not found"})
    assert (await stored(pool, call["id"]))["summary"] == "mine"
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0  # refused reports are not remembered


async def test_bad_reports_are_400_and_write_nothing(hooks, agent, api, pool):
    call = await insert_call(pool, api.org_id, summary="kept")
    base = {"callLogId": str(call["id"]), "orgId": str(api.org_id)}
    cases = [
        ({**base, "callLogId": "nope", "summary": "x"}, "callLogId must be a UUID"),
        ({"callLogId": str(call["id"]), "summary": "x"}, "orgId must be a UUID"),
        (base, "The report has none of: transcript, summary, sentiment, sentimentScore, score, recordingUrl, "
               "doNotCall"),
        ({**base, "doNotCall": "yes"}, "doNotCall must be a boolean"),
        ({**base, "transcript": "hello"}, "transcript must be an array of {role: assistant|user, content: string}"),
        ({**base, "transcript": [{"role": "system", "content": "x"}]},
         "transcript must be an array of {role: assistant|user, content: string}"),
        ({**base, "transcript": [{"role": "user", "content": 5}]},
         "transcript must be an array of {role: assistant|user, content: string}"),
        ({**base, "sentiment": "ecstatic"}, "sentiment must be one of: positive, negative, neutral"),
        ({**base, "sentimentScore": 1.5}, "sentimentScore must be a number from -1 to 1"),
        ({**base, "score": 101}, "score must be a number from 0 to 100"),
        ({**base, "score": True}, "score must be a number from 0 to 100"),
        ({**base, "score": "90"}, "score must be a number from 0 to 100"),
        ({**base, "recordingUrl": "ftp://x/y.mp3"}, "recordingUrl must be an http(s) URL"),
        ({**base, "summary": ["x"]}, "summary must be a string"),
    ]
    for report, message in cases:
        assert await post(hooks, *agent.signed_report(report)) == (400, {"error": message}), report
    body, headers = b"[1, 2]", agent.signed_report({})[1]
    headers["X-Outreach-Signature"] = signature(SECRET, headers["X-Outreach-Timestamp"], body)
    assert await post(hooks, body, headers) == (400, {"error": "Request body must be a JSON object"})
    assert (await stored(pool, call["id"]))["summary"] == "kept"


async def test_without_a_secret_reports_are_refused(http, agent, api, pool):
    call = await insert_call(pool, api.org_id)
    body, headers = agent.signed_report(full_report(call))
    async with http.post(HOOK, data=body, headers=headers) as response:
        assert response.status == 503
        assert "VOICE_AGENT_SECRET" in (await response.json())["error"]
