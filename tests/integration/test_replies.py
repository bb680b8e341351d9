"""What a lead's answer changes, through the provider webhooks: bounces and complaints suppress, a verified
email reply stops the lead's remaining steps and moves its status, an unverified one changes nothing, and the
voice agent's report qualifies a lead or puts its number on the do-not-call list."""
from __future__ import annotations

import dataclasses
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from tests.factories import insert_call, insert_campaign, insert_lead, insert_message, insert_row
from tests.fakes.voice_agent import SECRET as AGENT_SECRET, FakeVoiceAgent
from tests.integration.test_resend_webhook import SECRET, event, signed_headers


@pytest.fixture
async def hooks(settings, pool, redis):
    settings = dataclasses.replace(settings, resend_webhook_secret=SECRET, voice_agent_url="http://127.0.0.1:9",
                                   voice_agent_secret=AGENT_SECRET)
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def resend_event(hooks, kind: str, **data) -> dict:
    body = event(kind, **data)
    async with hooks.post("/api/webhook/resend", data=body, headers=signed_headers(body)) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def suppressed(pool) -> list[tuple]:
    return [tuple(row) for row in await pool.fetch("SELECT type, value, source FROM suppressions ORDER BY value")]


# --- bounces and complaints ---------------------------------------------------------------------------

async def test_a_hard_bounce_and_a_complaint_suppress_a_soft_bounce_does_not(hooks, api, pool):
    lead = await insert_lead(pool, api.org_id, email="x@example.com")
    for index, to in enumerate(("Hard <HARD@example.com>", "soft@example.com", "angry@example.com")):
        await insert_message(pool, api.org_id, lead["id"], provider_id=f"re_{index}")
    tags = {"org_id": str(api.org_id)}
    await resend_event(hooks, "email.bounced", email_id="re_0", to=["Hard <HARD@example.com>"], tags=tags,
                       bounce={"type": "Permanent", "subType": "General", "message": "No such user"})
    await resend_event(hooks, "email.bounced", email_id="re_1", to=["soft@example.com"], tags=tags,
                       bounce={"type": "Transient", "subType": "MailboxFull", "message": "Mailbox full"})
    await resend_event(hooks, "email.complained", email_id="re_2", to=["angry@example.com"], tags=tags)
    assert await suppressed(pool) == [("email", "angry@example.com", "complaint"),
                                      ("email", "hard@example.com", "bounce")]


# --- email replies ------------------------------------------------------------------------------------

@pytest.fixture
async def conversation(api, pool):
    """Lead Ivan, emailed by campaign `first` (onReply: qualified) and waiting in campaign `second`."""
    await api.put("/api/dashboard/channels", json={"channel": "email", "config": {"fromEmail": "sales@acme.test"}})
    lead = await insert_lead(pool, api.org_id, first_name="Ivan", email="ivan@example.com", status="contacted")
    first = await insert_campaign(pool, api.org_id, status="completed", settings={"onReply": "qualified"})
    second = await insert_campaign(pool, api.org_id, status="paused")
    await insert_row(pool, "campaign_leads", campaign_id=first["id"], lead_id=lead["id"], org_id=api.org_id,
                     state="sent", channel="email")
    await insert_row(pool, "campaign_leads", campaign_id=second["id"], lead_id=lead["id"], org_id=api.org_id)
    await insert_row(pool, "attempts", campaign_id=first["id"], lead_id=lead["id"], org_id=api.org_id,
                     channel="email", idempotency_key="k1", outcome="sent", provider_id="re_1")
    message = await insert_message(pool, api.org_id, lead["id"], campaign_id=first["id"], provider_id="re_1")
    return lead, first, second, message


async def lead_state(pool, lead, first, second) -> dict:
    rows = {row["campaign_id"]: row for row in await pool.fetch(
        "SELECT campaign_id, state::text, error, replied_at FROM campaign_leads WHERE lead_id = $1", lead["id"])}
    return {"status": await pool.fetchval("SELECT status::text FROM leads WHERE id = $1", lead["id"]),
            "first": (rows[first["id"]]["state"], rows[first["id"]]["replied_at"] is not None),
            "second": (rows[second["id"]]["state"], rows[second["id"]]["error"],
                       rows[second["id"]]["replied_at"] is not None)}


def reply_event(**data) -> dict:
    return {"email_id": "in_1", "from": "Ivan <ivan@example.com>", "to": ["sales@acme.test"], "subject": "Re: Hi",
            **data}


async def test_a_verified_reply_stops_the_remaining_steps_and_qualifies_the_lead(hooks, conversation, pool):
    lead, first, second, message = conversation
    body = await resend_event(hooks, "email.received", **reply_event(
        headers=[{"name": "Authentication-Results", "value": "mx.acme.test; spf=pass; dkim=pass; dmarc=pass"}]))
    assert body["success"] is True and body["verified"] is True
    assert await lead_state(pool, lead, first, second) == {
        "status": "qualified", "first": ("sent", True), "second": ("skipped", "Lead replied", False)}
    assert await pool.fetchval("SELECT status::text FROM messages WHERE id = $1", message["id"]) == "replied"
    assert await suppressed(pool) == []


async def test_an_unverified_reply_is_stored_flagged_and_changes_nothing(hooks, conversation, pool):
    lead, first, second, message = conversation
    body = await resend_event(hooks, "email.received", **reply_event(
        spf="fail", dkim="fail", subject="unsubscribe"))
    assert body["success"] is True and body["verified"] is False
    inbound = await pool.fetchrow("SELECT metadata, parent_id FROM messages WHERE direction = 'inbound'")
    assert inbound["metadata"]["verified"] is False and inbound["metadata"]["checks"] == {"spf": "fail", "dkim": "fail"}
    assert inbound["parent_id"] == message["id"]
    assert await lead_state(pool, lead, first, second) == {
        "status": "contacted", "first": ("sent", False), "second": ("pending", None, False)}
    assert await pool.fetchval("SELECT status::text FROM messages WHERE id = $1", message["id"]) == "sent"
    assert await suppressed(pool) == []


async def test_a_reply_asking_to_stop_suppresses_the_address(hooks, conversation, pool):
    await resend_event(hooks, "email.received", **reply_event(subject="unsubscribe"))  # the List-Unsubscribe mailto
    assert await suppressed(pool) == [("email", "ivan@example.com", "reply")]


async def test_a_status_a_user_set_is_never_changed_by_a_reply(hooks, api, conversation, pool):
    lead, first, second, _ = conversation
    assert (await api.patch(f"/api/dashboard/leads/{lead['id']}", json={"status": "new"})).status == 200
    await resend_event(hooks, "email.received", **reply_event())
    state = await lead_state(pool, lead, first, second)
    assert state["status"] == "new" and state["second"][0] == "skipped"


AUTH = [{"name": "Authentication-Results", "value": "mx.acme.test; spf=pass; dkim=pass; dmarc=pass"}]


async def test_a_reply_reaches_every_lead_row_of_the_address_that_was_written_to(hooks, api, conversation, pool):
    lead, first, second, message = conversation
    twin = await insert_lead(pool, api.org_id, first_name="Ivan (imported again)", email="IVAN@example.com",
                             status="contacted")  # the same person, a newer row, written to by `second`'s first step
    twin_message = await insert_message(pool, api.org_id, twin["id"], campaign_id=second["id"], provider_id="re_2")
    await insert_row(pool, "campaign_leads", campaign_id=second["id"], lead_id=twin["id"], org_id=api.org_id,
                     state="pending", channel="email", step=1)
    await insert_row(pool, "attempts", campaign_id=second["id"], lead_id=twin["id"], org_id=api.org_id,
                     channel="email", idempotency_key="k2", outcome="sent", provider_id="re_2")
    never_written = await insert_lead(pool, api.org_id, first_name="Ivan (never written to)", email="ivan@example.com")
    body = await resend_event(hooks, "email.received", **reply_event(headers=AUTH))
    assert body["success"] is True
    assert (await lead_state(pool, lead, first, second))["second"][:2] == ("skipped", "Lead replied")
    twin_state = await pool.fetchrow("SELECT state::text, replied_at FROM campaign_leads WHERE lead_id = $1",
                                     twin["id"])
    assert twin_state["state"] != "pending" and twin_state["replied_at"] is not None
    inbound = await pool.fetch("SELECT lead_id, parent_id FROM messages WHERE direction = 'inbound' ORDER BY lead_id")
    assert sorted((row["lead_id"], row["parent_id"]) for row in inbound) == sorted(
        [(lead["id"], message["id"]), (twin["id"], twin_message["id"])])  # not on the row nobody wrote to
    statuses = {row["id"]: row["status"] for row in await pool.fetch("SELECT id, status::text FROM leads")}
    assert statuses[never_written["id"]] == "new"


async def claim_reply_to(tenant, pool, proven: str | None = None):
    await tenant.put("/api/dashboard/channels", json={"channel": "email", "config": {
        "fromEmail": proven or f"whatever@{tenant.org_id}.test", "replyTo": "replies@acme.test"}})
    if proven:
        await pool.execute("UPDATE sender_addresses SET verified_at = now(), verified_by = 'link' WHERE address = $1",
                           proven)


async def test_another_orgs_claim_on_the_reply_to_address_does_not_drop_the_reply(hooks, api, pool, make_tenant):
    await claim_reply_to(api, pool, proven="sales@acme.test")
    lead = await insert_lead(pool, api.org_id, first_name="Ivan", email="ivan@example.com", status="contacted")
    await insert_message(pool, api.org_id, lead["id"], provider_id="re_acme")
    evil = await make_tenant("evil")
    await claim_reply_to(evil, pool)  # unproven, and it holds a lead with the address: no veto either way
    await insert_lead(pool, evil.org_id, first_name="Ivan", email="ivan@example.com")
    body = await resend_event(hooks, "email.received", **reply_event(to=["replies@acme.test"], headers=AUTH))
    assert body["success"] is True, body
    assert await pool.fetchval("SELECT org_id FROM messages WHERE direction = 'inbound'") == api.org_id


async def test_a_reply_goes_to_the_org_whose_email_it_answers(hooks, api, pool, make_tenant):
    """Two organizations wrote to Ivan and both take mail at the address: In-Reply-To names ours."""
    other = await make_tenant("globex")
    for tenant in (api, other):
        await claim_reply_to(tenant, pool)
        lead = await insert_lead(pool, tenant.org_id, email="ivan@example.com", status="contacted")
        await insert_message(pool, tenant.org_id, lead["id"], provider_id=f"re_{tenant.org_id}")
    ambiguous = await resend_event(hooks, "email.received", **reply_event(to=["replies@acme.test"], headers=AUTH))
    assert ambiguous == {"received": True, "type": "email.received", "success": False,
                         "error": "Recipient address is shared by several organizations"}
    threaded = AUTH + [{"name": "In-Reply-To", "value": f"<re_{other.org_id}@resend.dev>"}]
    body = await resend_event(hooks, "email.received", **reply_event(email_id="in_2", to=["replies@acme.test"],
                                                                     headers=threaded))
    assert body["success"] is True
    assert await pool.fetchval("SELECT org_id FROM messages WHERE direction = 'inbound'") == other.org_id


# --- the voice agent's report -------------------------------------------------------------------------

async def agent_report(hooks, report: dict) -> dict:
    body, headers = FakeVoiceAgent().signed_report(report)
    async with hooks.post("/api/webhook/voice-agent", data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


@pytest.fixture
async def called(api, pool):
    lead = await insert_lead(pool, api.org_id, phone="+1 555 010 0199", status="contacted")
    campaign = await insert_campaign(pool, api.org_id, settings={"qualifyScore": 0.8})
    await insert_row(pool, "campaign_leads", campaign_id=campaign["id"], lead_id=lead["id"], org_id=api.org_id)
    call = await insert_call(pool, api.org_id, lead_id=lead["id"], campaign_id=campaign["id"],
                             to_number="+1 555 010 0199")
    return lead, call


async def test_a_score_at_the_campaigns_threshold_qualifies_the_lead(hooks, api, called, pool):
    lead, call = called
    ids = {"callLogId": str(call["id"]), "orgId": str(api.org_id)}
    assert (await agent_report(hooks, {**ids, "score": 79}))["qualified"] is False
    assert await pool.fetchval("SELECT status::text FROM leads WHERE id = $1", lead["id"]) == "contacted"
    assert (await agent_report(hooks, {**ids, "score": 80, "summary": "Wants a demo"}))["qualified"] is True
    assert await pool.fetchval("SELECT status::text FROM leads WHERE id = $1", lead["id"]) == "qualified"


async def test_do_not_call_suppresses_the_number_and_stops_the_lead(hooks, api, called, pool):
    lead, call = called
    body = await agent_report(hooks, {"callLogId": str(call["id"]), "orgId": str(api.org_id), "doNotCall": True})
    assert body == {"success": True, "callId": str(call["id"]), "qualified": False, "suppressed": True}
    assert await suppressed(pool) == [("phone", "+15550100199", "do_not_call")]
    row = await pool.fetchrow("SELECT state::text, error FROM campaign_leads WHERE lead_id = $1", lead["id"])
    assert tuple(row) == ("skipped", "Lead asked not to be contacted again")
    listed = json.dumps((await api.get("/api/dashboard/suppressions?type=phone")).body)
    assert "+15550100199" in listed
