"""Call log routes over HTTP and PostgreSQL."""
from __future__ import annotations

import datetime
import uuid

from tests.factories import insert_call, insert_campaign, insert_lead, insert_number

BASE = "/api/dashboard/calls"
T0 = datetime.datetime(2026, 3, 24, 10, 15, 30, 123000, tzinfo=datetime.timezone.utc)
LIST_KEYS = {"id", "direction", "status", "fromNumber", "toNumber", "duration", "startedAt", "summary", "sentiment"}
DETAIL_KEYS = {"id", "orgId", "leadId", "campaignId", "phoneNumberId", "direction", "status", "fromNumber", "toNumber",
               "duration", "startedAt", "endedAt", "transcription", "transcript", "summary", "sentiment",
               "sentimentScore", "score", "recordingUrl", "metadata"}


async def test_list_is_newest_first_paged_and_of_the_org_only(api, other, pool):
    tie = uuid.UUID(int=1), uuid.UUID(int=2)
    await insert_call(pool, api.org_id, id=tie[0], started_at=T0)
    await insert_call(pool, api.org_id, id=tie[1], started_at=T0)
    newest = await insert_call(pool, api.org_id, started_at=T0 + datetime.timedelta(minutes=1), status="no_answer",
                               from_number="+100", to_number="+200", duration=42, summary="hi", sentiment="positive")
    await insert_call(pool, other.org_id, started_at=T0 + datetime.timedelta(hours=1))
    reply = await api.get(BASE)
    assert reply.status == 200
    assert reply.body["pagination"] == {"page": 1, "limit": 50, "total": 3, "totalPages": 1}
    assert [call["id"] for call in reply.body["calls"]] == [str(newest["id"]), str(tie[1]), str(tie[0])]
    first = reply.body["calls"][0]
    assert set(first) == LIST_KEYS
    assert first == {"id": str(newest["id"]), "direction": "outbound", "status": "no_answer", "fromNumber": "+100",
                     "toNumber": "+200", "duration": 42, "startedAt": "2026-03-24T10:16:30.123Z", "summary": "hi",
                     "sentiment": "positive"}
    page = await api.get(BASE + "?limit=2&page=2")
    assert page.body["pagination"] == {"page": 2, "limit": 2, "total": 3, "totalPages": 2}
    assert [call["id"] for call in page.body["calls"]] == [str(tie[0])]
    assert (await api.get(BASE + "?limit=500")).body["pagination"]["limit"] == 100
    assert (await api.get(BASE + "?page=0&limit=0")).body["pagination"] == {"page": 1, "limit": 1, "total": 3,
                                                                          "totalPages": 3}
    theirs = await other.get(BASE)
    assert theirs.body["pagination"]["total"] == 1 and len(theirs.body["calls"]) == 1


async def test_get_returns_the_full_row_without_provider_ids(api, pool):
    lead = await insert_lead(pool, api.org_id, first_name="Ivan")
    campaign = await insert_campaign(pool, api.org_id)
    number = await insert_number(pool, api.org_id)
    call = await insert_call(
        pool, api.org_id, lead_id=lead["id"], campaign_id=campaign["id"], phone_number_id=number["id"],
        provider_call_id="CA123", direction="inbound", status="completed", from_number="+1", to_number="+2",
        duration=94, started_at=T0, ended_at=T0 + datetime.timedelta(seconds=94), transcription="hello",
        transcript=[{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Hello"}], summary="ok",
        sentiment="neutral", sentiment_score=-0.25, score=80.5, recording_url="https://rec/1",
        metadata={"agent": "v1"},
    )
    reply = await api.get(f"{BASE}/{call['id']}")
    assert reply.status == 200
    assert set(reply.body) == DETAIL_KEYS
    assert reply.body == {
        "id": str(call["id"]), "orgId": str(api.org_id), "leadId": str(lead["id"]),
        "campaignId": str(campaign["id"]), "phoneNumberId": str(number["id"]), "direction": "inbound",
        "status": "completed", "fromNumber": "+1", "toNumber": "+2", "duration": 94,
        "startedAt": "2026-03-24T10:15:30.123Z", "endedAt": "2026-03-24T10:17:04.123Z", "transcription": "hello",
        "transcript": [{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Hello"}],
        "summary": "ok", "sentiment": "neutral", "sentimentScore": -0.25, "score": 80.5,
        "recordingUrl": "https://rec/1", "metadata": {"agent": "v1"},
    }


async def test_defaults_of_a_bare_row(api, pool):
    call = await insert_call(pool, api.org_id)
    body = (await api.get(f"{BASE}/{call['id']}")).body
    assert body["transcript"] == [] and body["metadata"] == {}
    assert body["sentiment"] is None and body["sentimentScore"] is None and body["leadId"] is None
    assert body["startedAt"].endswith("Z")


async def test_other_orgs_call_is_not_found(api, other, pool):
    theirs = await insert_call(pool, other.org_id, summary="secret")
    reply = await api.get(f"{BASE}/{theirs['id']}")
    assert reply.status == 404 and reply.body == {"error": "Not found"}
    assert (await other.get(f"{BASE}/{theirs['id']}")).body["summary"] == "secret"


async def test_bad_input(api, pool):
    await insert_call(pool, api.org_id)
    cases = [
        (BASE + "?page=abc", 400, "page must be a whole number"),
        (BASE + "?page=2.9", 400, "page must be a whole number"),
        (BASE + "?limit=ten", 400, "limit must be a whole number"),
        (BASE + "?limit=1e3", 400, "limit must be a whole number"),
        (f"{BASE}/not-a-uuid", 404, "Not found"),
        (f"{BASE}/{uuid.uuid4()}", 404, "Not found"),
        (f"{BASE}/{'0' * 36}", 404, "Not found"),
    ]
    for target, status, message in cases:
        reply = await api.get(target)
        assert (reply.status, reply.body) == (status, {"error": message}), target
    assert (await api.post(BASE, json={})).status == 405
    assert (await api.delete(f"{BASE}/{uuid.uuid4()}")).status == 405
    assert (await api.get(BASE)).body["pagination"]["total"] == 1
