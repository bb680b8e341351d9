"""Email routes over HTTP: send, test and generate, through the real Resend and OpenRouter adapters pointed at
local fakes; bad input, plan limits, provider failures and other organizations' ids."""
from __future__ import annotations

import dataclasses
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.openrouter import OpenRouterDrafter
from outreach.providers.resend import ResendEmail
from outreach.storage.runs import month_start
from tests.conftest import Api
from tests.factories import insert_campaign, insert_lead, insert_usage, prove_sender
from tests.fakes import openrouter as ai
from tests.fakes.resend import invalid_recipient, rate_limited, server_error

DASH = "/api/dashboard/email"
DEFAULT_SENDER = "Outreach <noreply@outreach.test>"
SCRIPT = "Introduce Nimbus, the scheduling assistant that cuts no-shows for dental clinics by a third."



@pytest.fixture
async def openrouter():
    server = ai.FakeOpenRouter()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def ports(resend, openrouter):
    email = ResendEmail(resend.api_key, resend.url(), rate_per_second=1000, timeout=2)
    drafter = OpenRouterDrafter(openrouter.api_key, openrouter.url(), timeout=1)
    yield {"email": email, "drafter": drafter}
    await email.close()
    await drafter.close()


@pytest.fixture
async def http(settings, pool, redis, ports):
    """This module's app sends email and drafts for real (the `api`, `other` and `make_tenant` fixtures use it)."""
    app = build_app(dataclasses.replace(settings, email_from=DEFAULT_SENDER), Deps(pool=pool, redis=redis, **ports))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def bare(settings, pool, redis):
    """An app with no email provider, no drafter and no default sender."""
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis)), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
async def lead(api, pool):
    await pool.execute("UPDATE organizations SET plan = 'starter' WHERE id = $1", api.org_id)
    return await insert_lead(pool, api.org_id, first_name="Ivan", email="Ivan@Example.com")


def send_body(lead: dict, **changes) -> dict:
    return {"leadId": str(lead["id"]), "subject": "Hello  Ivan", "body": "Hi <b>Ivan</b>,\nsee you & soon",
            "toEmail": "ivan@example.com", **changes}


async def messages_of(pool, org_id) -> list[dict]:
    rows = await pool.fetch("SELECT status::text, provider_id, metadata, content, campaign_id FROM messages "
                            "WHERE org_id = $1", org_id)
    return [dict(row) for row in rows]


async def emails_used(pool, org_id) -> int:
    return await pool.fetchval("SELECT coalesce(sum(emails), 0) FROM usage WHERE org_id = $1", org_id)


# --- POST /email/send -----------------------------------------------------------------------------------


async def test_send_from_the_orgs_sender_logs_counts_and_escapes(api, lead, pool, resend):
    await api.put("/api/dashboard/channels", json={"channel": "email", "config": {
        "fromEmail": "sales@acme.test", "fromName": "Acme, Sales", "replyTo": "replies@acme.test"}})
    await prove_sender(pool, "sales@acme.test")
    campaign = await insert_campaign(pool, api.org_id)
    reply = await api.post(f"{DASH}/send", json=send_body(lead, campaignId=str(campaign["id"])))
    assert reply.status == 200, reply.body
    sent = resend.sent[0]
    assert reply.body == {"success": True, "messageId": reply.body["messageId"], "resendId": sent["id"]}
    assert sent["from"] == '"Acme, Sales" <sales@acme.test>' and sent["reply_to"] == "replies@acme.test"
    assert sent["to"] == ["Ivan@Example.com"] and sent["subject"] == "Hello Ivan"
    assert sent["html"] == "Hi &lt;b&gt;Ivan&lt;/b&gt;,<br />see you &amp; soon"
    assert sent["tags"] == [{"name": "org_id", "value": str(api.org_id)}]
    assert sent["key"] == reply.body["messageId"]
    assert await messages_of(pool, api.org_id) == [{
        "status": "sent", "provider_id": sent["id"], "content": "Hi <b>Ivan</b>,\nsee you & soon",
        "campaign_id": campaign["id"],
        "metadata": {"subject": "Hello Ivan", "toEmail": "Ivan@Example.com", "resendId": sent["id"]},
    }]
    assert await emails_used(pool, api.org_id) == 1
    listed = await api.get(f"{DASH}/messages")
    assert listed.body["messages"][0]["metadata"]["to"] == "Ivan@Example.com"


async def test_send_without_org_settings_uses_the_deployment_sender(api, lead, resend):
    assert (await api.post(f"{DASH}/send", json=send_body(lead))).status == 200
    assert resend.sent[0]["from"] == DEFAULT_SENDER and "reply_to" not in resend.sent[0]


@pytest.mark.parametrize("change, message", [
    ({"subject": ""}, "Missing required fields: leadId, subject, body, toEmail"),
    ({"toEmail": None}, "Missing required fields: leadId, subject, body, toEmail"),
    ({"leadId": 0}, "Missing required fields: leadId, subject, body, toEmail"),
    ({"body": ["x"]}, "leadId, subject, body and toEmail must be strings"),
    ({"leadId": "nope"}, "leadId must be a UUID"),
    ({"leadId": str(uuid.uuid4())}, "Lead not found"),
    ({"toEmail": "someone@else.test"}, "toEmail must be the lead's email address"),
    ({"campaignId": "x"}, "campaignId must be a UUID"),
    ({"campaignId": str(uuid.uuid4())}, "Campaign not found"),
    ({"subject": "x" * 501}, "subject must be 1 to 500 characters"),
    ({"body": "x" * 100_001}, "body must be at most 100000 characters"),
])
async def test_send_refuses_bad_input_before_anything_happens(api, lead, pool, resend, change, message):
    reply = await api.post(f"{DASH}/send", json=send_body(lead, **change))
    assert (reply.status, reply.body) == (400, {"error": message})
    assert resend.requests == [] and await messages_of(pool, api.org_id) == []
    assert await emails_used(pool, api.org_id) == 0


async def test_send_refuses_malformed_json_and_a_lead_without_email(api, pool, resend):
    assert (await api.post(f"{DASH}/send", raw=b"{oops", headers={"Content-Type": "application/json"})).body == \
        {"error": "Invalid JSON body"}
    silent = await insert_lead(pool, api.org_id, phone="+15550001111")
    reply = await api.post(f"{DASH}/send", json=send_body(silent))
    assert (reply.status, reply.body) == (400, {"error": "Lead has no email address"})
    assert resend.requests == []


async def test_another_orgs_lead_or_campaign_reads_like_a_missing_one(api, other, lead, pool, resend):
    campaign = await insert_campaign(pool, api.org_id)
    stolen = await other.post(f"{DASH}/send", json=send_body(lead))
    assert (stolen.status, stolen.body) == (400, {"error": "Lead not found"})
    theirs = await insert_lead(pool, other.org_id, email="ivan@example.com")
    crossed = await other.post(f"{DASH}/send", json=send_body(theirs, campaignId=str(campaign["id"])))
    assert (crossed.status, crossed.body) == (400, {"error": "Campaign not found"})
    assert resend.requests == [] and await pool.fetchval("SELECT count(*) FROM messages") == 0


async def test_send_over_the_plan_limit_is_refused_without_sending(api, lead, pool, resend):
    await insert_usage(pool, api.org_id, month_start(), emails=500)  # starter: 500 emails a month
    reply = await api.post(f"{DASH}/send", json=send_body(lead))
    assert (reply.status, reply.body) == (429, {"error": "Email limit reached (500/500)"})
    assert resend.requests == [] and await messages_of(pool, api.org_id) == []
    await pool.execute("UPDATE organizations SET plan = 'free' WHERE id = $1", api.org_id)
    assert (await api.post(f"{DASH}/send", json=send_body(lead))).status == 429


@pytest.mark.parametrize("reply, retry_after", [(invalid_recipient(), None), (rate_limited(3), 3),
                                                (server_error(), None)])
async def test_a_provider_error_is_a_502_the_message_failed_and_usage_given_back(api, lead, pool, resend, reply,
                                                                                   retry_after):
    resend.queue(reply)
    answer = await api.post(f"{DASH}/send", json=send_body(lead))
    assert answer.status == 502 and answer.body["error"].startswith("Failed to send email: Resend refused the email")
    assert answer.body.get("retryAfter") == retry_after
    [logged] = await messages_of(pool, api.org_id)
    assert logged["status"] == "failed" and logged["provider_id"] is None
    assert logged["metadata"]["error"] in answer.body["error"]
    assert await emails_used(pool, api.org_id) == 0


async def test_send_is_503_when_email_or_a_sender_is_not_configured(api, lead, pool, bare, settings, redis, ports):
    unconfigured = Api(bare, api.token)
    reply = await unconfigured.post(f"{DASH}/send", json=send_body(lead))
    assert (reply.status, reply.body) == (503, {"error": "Email is not configured: set RESEND_API_KEY"})
    app = build_app(settings, Deps(pool=pool, redis=redis, email=ports["email"]))  # Resend, but no sender
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        reply = await Api(client, api.token).post(f"{DASH}/send", json=send_body(lead))
    assert reply.status == 503 and "OUTREACH_EMAIL_FROM" in reply.body["error"]
    assert await messages_of(pool, api.org_id) == [] and await emails_used(pool, api.org_id) == 0


# --- POST /email/test -----------------------------------------------------------------------------------


async def session(http, clerk, email: str | None = "me@acme.test") -> Api:
    claims = {"email": email} if email else {}
    return Api(http, clerk.mint(f"user_{uuid.uuid4().hex[:8]}", **claims))


async def test_test_email_goes_to_the_signed_in_user_from_the_orgs_sender(http, clerk, pool, resend):
    me = await session(http, clerk)
    saved = await me.put("/api/dashboard/channels", json={"channel": "email", "config": {
        "fromEmail": "sales@acme.test", "fromName": "<Acme>"}})
    assert saved.status == 200
    await prove_sender(pool, "sales@acme.test")
    await pool.execute("UPDATE organizations SET plan = 'starter'")  # a test email is counted as an email
    reply = await me.post(f"{DASH}/test")
    assert (reply.status, reply.body) == (200, {"success": True, "to": "me@acme.test"})
    sent = resend.sent[0]
    assert sent["to"] == ["me@acme.test"] and sent["from"] == '"<Acme>" <sales@acme.test>'
    assert "&lt;Acme&gt;" in sent["html"] and "<Acme>" not in sent["html"]
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0


async def test_test_email_refusals(http, clerk, api, resend, pool):
    assert (await api.post(f"{DASH}/test")).body == {"error": "No email address found on your account"}
    assert (await (await session(http, clerk, None)).post(f"{DASH}/test")).status == 400
    me = await session(http, clerk)
    reply = await me.post(f"{DASH}/test")
    assert (reply.status, reply.body) == \
        (400, {"error": "Email not configured. Please save your email settings first."})
    await me.put("/api/dashboard/channels", json={"channel": "email", "config": {"fromEmail": "sales@acme.test"}})
    await prove_sender(pool, "sales@acme.test")
    await pool.execute("UPDATE organizations SET plan = 'starter'")  # a test email is counted as an email
    resend.queue(server_error())
    reply = await me.post(f"{DASH}/test")
    assert reply.status == 502 and reply.body["error"].startswith("Resend error: Resend refused the email (500")
    assert resend.sent == []



async def test_test_email_to_an_address_on_the_do_not_contact_list_is_refused_and_not_counted(http, clerk, pool,
                                                                                              resend):
    me = await session(http, clerk)
    await me.put("/api/dashboard/channels", json={"channel": "email", "config": {"fromEmail": "sales@acme.test"}})
    await prove_sender(pool, "sales@acme.test")
    await pool.execute("UPDATE organizations SET plan = 'starter'")
    listed = await me.post("/api/dashboard/suppressions", json={"type": "email", "value": "ME@acme.test"})
    assert listed.status == 201, listed.body
    reply = await me.post(f"{DASH}/test")
    assert (reply.status, reply.body) == (409, {"error": "me@acme.test is on the do-not-contact list: it is not "
                                                          "contacted"})
    assert resend.sent == []
    assert await pool.fetchval("SELECT coalesce(sum(emails), 0) FROM usage") == 0

# --- POST /email/generate -------------------------------------------------------------------------------


async def make_script(tenant, content: str = SCRIPT) -> str:
    reply = await tenant.post("/api/dashboard/scripts", json={"name": "pitch", "content": content,
                                                              "objectionHandlers": ["Too expensive: it pays back."]})
    return reply.body["id"]


@pytest.mark.parametrize("kind, words", [("initial", "first email"), ("followup", "day 3"), ("final", "day 7")])
async def test_generate_writes_each_email_of_the_sequence_from_the_orgs_script(api, openrouter, kind, words):
    script_id = await make_script(api)
    await api.put("/api/dashboard/voice", json={"language": "en", "personality": "friendly"})
    openrouter.queue(ai.email_completion("Fewer no-shows at Smile", "Hi Olena,\n\nShall we talk?\n\nBest"))
    reply = await api.post(f"{DASH}/generate", json={"type": kind, "leadName": "Olena Koval",
                                                     "companyName": "Smile", "scriptId": script_id})
    assert (reply.status, reply.body) == (200, {"subject": "Fewer no-shows at Smile",
                                                "body": "Hi Olena,\n\nShall we talk?\n\nBest", "fallback": False})
    request = openrouter.requests[0]["json"]
    assert request["model"] == "google/gemini-2.0-flash-001"
    system, user = (message["content"] for message in request["messages"])
    assert SCRIPT in system and "Too expensive" in system and "friendly" in system and "English" in system
    assert words in user and "Olena Koval" in user and "Smile" in user and SCRIPT not in user


async def test_generate_without_a_script_uses_the_orgs_default_language(api, openrouter):
    openrouter.queue(ai.email_completion(None, "Добрий день!\n\nДавайте поговоримо."))
    reply = await api.post(f"{DASH}/generate", json={"type": "followup"})
    assert reply.body["subject"] == "Щодо мого попереднього листа"  # a new org's voice config speaks Ukrainian
    assert "Ukrainian" in openrouter.requests[0]["json"]["messages"][0]["content"]


@pytest.mark.parametrize("answer, reason", [
    (ai.completion("Sure! Here is a great email for you."), "not the JSON"),
    (ai.completion("   "), "empty answer"),
    (ai.email_completion("Hi", "Dear [Your Name], hello"), "placeholder"),
    (ai.email_completion("Hi", f"Hi!\n\n{SCRIPT}"), "repeats the campaign's instructions"),
])
async def test_a_bad_answer_gives_the_clear_template_fallback(api, openrouter, answer, reason):
    script_id = await make_script(api)
    await api.put("/api/dashboard/voice", json={"language": "en"})
    openrouter.queue(answer)
    reply = await api.post(f"{DASH}/generate", json={"type": "final", "companyName": "Smile", "scriptId": script_id})
    assert reply.status == 200 and reply.body["fallback"] is True and reason in reply.body["reason"]
    assert reply.body["subject"] == "Final note — Smile"
    assert reply.body["body"].startswith("Hi there,") and SCRIPT not in reply.body["body"]


@pytest.mark.parametrize("answer, status_words", [
    (ai.error_in_200(502, "Upstream provider failed mid-generation"), "OpenRouter error 502"),
    (ai.error_reply(402, "Insufficient credits"), "out of credits"),
    (ai.error_reply(500, "boom"), "OpenRouter error 500"),
    (ai.slow(ai.completion("late"), 1.5), "did not answer within 1 s"),
])
async def test_openrouter_failures_give_the_template_draft_never_an_empty_page(api, openrouter, answer, status_words):
    await api.put("/api/dashboard/voice", json={"language": "en"})
    openrouter.queue(answer)
    reply = await api.post(f"{DASH}/generate", json={"type": "initial", "leadName": "Olena Koval",
                                                     "companyName": "Smile"})
    assert reply.status == 200 and reply.body["fallback"] is True and status_words in reply.body["reason"]
    assert reply.body["subject"] == "A quick note for Smile"
    assert reply.body["body"].startswith("Hi Olena,") and "Smile" in reply.body["body"]


async def test_a_rate_limited_openrouter_gives_the_template_and_when_to_ask_again(api, openrouter):
    openrouter.queue(ai.error_reply(429, "Rate limit exceeded", retry_after=30))
    first = await api.post(f"{DASH}/generate", json={"type": "initial"})
    assert first.status == 200 and first.body["fallback"] is True and first.body["retryAfter"] == 30
    assert "retry after 30 s" in first.body["reason"]
    again = await api.post(f"{DASH}/generate", json={"type": "followup"})
    assert again.status == 200 and again.body["fallback"] is True and 0 < again.body["retryAfter"] <= 30
    assert again.body["subject"] == "Щодо мого попереднього листа"  # a new org's voice config speaks Ukrainian
    assert len(openrouter.requests) == 1, "called OpenRouter again inside its Retry-After window"


@pytest.mark.parametrize("body, message", [
    ({}, "Invalid type. Must be 'initial', 'followup', or 'final'"),
    ({"type": "second"}, "Invalid type. Must be 'initial', 'followup', or 'final'"),
    ({"type": "initial", "leadName": 5}, "leadName must be a string"),
    ({"type": "initial", "scriptId": "abc"}, "scriptId must be a UUID"),
    ({"type": "initial", "scriptId": str(uuid.uuid4())}, "Script not found"),
])
async def test_generate_refuses_bad_input(api, openrouter, body, message):
    reply = await api.post(f"{DASH}/generate", json=body)
    assert (reply.status, reply.body) == (400, {"error": message})
    assert openrouter.requests == []


async def test_generate_never_reads_another_orgs_script(api, other, openrouter):
    script_id = await make_script(api, "Secret pitch of org A about their confidential pricing strategy.")
    reply = await other.post(f"{DASH}/generate", json={"type": "initial", "scriptId": script_id})
    assert (reply.status, reply.body) == (400, {"error": "Script not found"})
    assert openrouter.requests == []


async def test_generate_without_openrouter_answers_the_template_draft(api, bare):
    await api.put("/api/dashboard/voice", json={"language": "en"})
    reply = await Api(bare, api.token).post(f"{DASH}/generate", json={"type": "final", "leadName": "Olena",
                                                                        "companyName": "Smile"})
    assert (reply.status, reply.body) == (200, {
        "subject": "Final note — Smile", "fallback": True,
        "body": "Hi Olena,\n\nThis is my last note on this. If it becomes relevant, I would be glad to talk: simply "
                "reply to this email.\n\nBest regards",
        "reason": "AI drafts are not configured: set OPENROUTER_API_KEY"})
    bad = await Api(bare, api.token).post(f"{DASH}/generate", json={"type": "second"})
    assert (bad.status, bad.body) == (400, {"error": "Invalid type. Must be 'initial', 'followup', or 'final'"})


async def test_a_send_whose_answer_is_lost_stays_pending_and_counted(api, lead, pool, resend, ports):
    ports["email"].timeout = 0.3
    resend.hold()
    reply = await api.post("/api/dashboard/email/send", json=send_body(lead))
    resend.release()
    assert reply.status == 202 and reply.body["pending"] is True and "may have been sent" in reply.body["warning"]
    rows = await messages_of(pool, api.org_id)
    assert [row["status"] for row in rows] == ["pending"]  # its delivery webhook settles it
    assert await emails_used(pool, api.org_id) == 1  # it may have gone out: it counts
