"""POST /api/webhook/resend: Svix signatures, deduplication by svix-id, forward-only statuses within the org,
and replies from leads."""
from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import json
import time
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from tests.factories import insert_lead, insert_message, prove_sender

PATH = "/api/webhook/resend"
KEY = b"resend-webhook-test-key-32-bytes"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def signed_headers(body: bytes, *, event_id: str | None = None, stamp: int | None = None, key: bytes = KEY) -> dict:
    """Svix's scheme, written from its documentation: base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    event_id = event_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()) if stamp is None else stamp)
    digest = hmac.new(key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"svix-id": event_id, "svix-timestamp": stamp, "svix-signature": "v1," + base64.b64encode(digest).decode(),
            "Content-Type": "application/json"}


def event(kind: str, **data) -> bytes:
    return json.dumps({"type": kind, "created_at": "2026-03-24T10:15:30.123Z", "data": data}).encode()


def tracking(kind: str, email_id: str, org_id, tags_as_list: bool = False, **data) -> bytes:
    tags = [{"name": "org_id", "value": str(org_id)}] if tags_as_list else {"org_id": str(org_id)}
    return event(kind, email_id=email_id, to=["ivan@example.com"], subject="Hi", tags=tags, **data)


@pytest.fixture
async def hook(settings, pool, redis):
    """A client of an app with RESEND_WEBHOOK_SECRET set."""
    app = build_app(dataclasses.replace(settings, resend_webhook_secret=SECRET), Deps(pool=pool, redis=redis))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def post(client, body: bytes, headers: dict):
    async with client.post(PATH, data=body, headers=headers) as response:
        return response.status, await response.json()


@pytest.fixture
async def outbound(api, pool):
    """An email sent by org `api` to its lead, known to Resend as re_1."""
    lead = await insert_lead(pool, api.org_id, first_name="Ivan", email="Ivan@Example.com")
    message = await insert_message(pool, api.org_id, lead["id"], content="Hello", provider_id="re_1",
                                   metadata={"subject": "Hi", "toEmail": "Ivan@Example.com", "resendId": "re_1"})
    return lead, message


async def status_of(pool, message_id) -> str:
    return await pool.fetchval("SELECT status::text FROM messages WHERE id = $1", message_id)


# --- signatures ---------------------------------------------------------------------------------------


async def test_refused_when_the_secret_is_not_set(http, api, outbound, pool):
    body = tracking("email.delivered", "re_1", api.org_id)
    status, reply = await post(http, body, signed_headers(body))
    assert (status, reply) == (503, {"error": "Resend webhook is not configured: set RESEND_WEBHOOK_SECRET"})
    assert await status_of(pool, outbound[1]["id"]) == "sent"


async def test_a_good_signature_updates_the_status(hook, api, outbound, pool):
    body = tracking("email.delivered", "re_1", api.org_id)
    status, reply = await post(hook, body, signed_headers(body))
    assert (status, reply) == (200, {"received": True, "type": "email.delivered", "updated": True})
    assert await status_of(pool, outbound[1]["id"]) == "delivered"


async def test_a_key_rotation_header_with_several_signatures_is_accepted(hook, api, outbound, pool):
    body = tracking("email.opened", "re_1", api.org_id, tags_as_list=True)
    headers = signed_headers(body)
    headers["svix-signature"] = "v1,bm90IHRoZSBzaWduYXR1cmU= " + headers["svix-signature"]
    assert (await post(hook, body, headers))[0] == 200
    assert await status_of(pool, outbound[1]["id"]) == "read"


@pytest.mark.parametrize("tamper", ["body", "key", "id", "version", "garbage"])
async def test_a_bad_signature_is_refused(hook, api, outbound, pool, tamper):
    body = tracking("email.bounced", "re_1", api.org_id)
    headers = signed_headers(body, key=b"another key" if tamper == "key" else KEY)
    if tamper == "body":
        body = tracking("email.bounced", "re_1", api.org_id, bounce={"message": "forged"})
    if tamper == "id":
        headers["svix-id"] = "msg_other"
    if tamper == "version":
        headers["svix-signature"] = headers["svix-signature"].replace("v1,", "v2,")
    if tamper == "garbage":
        headers["svix-signature"] = "v1,ĉ€ not base64"
    assert await post(hook, body, headers) == (400, {"error": "Invalid signature"})
    assert await status_of(pool, outbound[1]["id"]) == "sent"
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
async def test_a_missing_header_is_refused(hook, api, outbound, missing):
    body = tracking("email.delivered", "re_1", api.org_id)
    headers = signed_headers(body)
    del headers[missing]
    assert await post(hook, body, headers) == (400, {"error": "Missing signature"})


@pytest.mark.parametrize("offset", [-301, 301, None])
async def test_a_stale_or_early_timestamp_is_refused(hook, api, outbound, pool, offset):
    body = tracking("email.delivered", "re_1", api.org_id)
    headers = signed_headers(body, stamp=int(time.time()) + offset if offset else None)
    if offset is None:
        headers = {**signed_headers(body), "svix-timestamp": "yesterday"}
    assert await post(hook, body, headers) == (400, {"error": "Invalid signature"})
    assert await status_of(pool, outbound[1]["id"]) == "sent"


async def test_a_replayed_delivery_is_acknowledged_once(hook, api, outbound, pool):
    bounced = tracking("email.bounced", "re_1", api.org_id, bounce={"message": "Mailbox does not exist"})
    first = await post(hook, bounced, signed_headers(bounced, event_id="msg_1"))
    assert first == (200, {"received": True, "type": "email.bounced", "updated": True})
    # An attacker replaying the captured request later: its timestamp is stale.
    stale = signed_headers(bounced, event_id="msg_1", stamp=int(time.time()) - 600)
    assert await post(hook, bounced, stale) == (400, {"error": "Invalid signature"})
    # Svix's own retry of the same delivery: a fresh timestamp and signature, the same svix-id.
    retried = await post(hook, bounced, signed_headers(bounced, event_id="msg_1"))
    assert retried == (200, {"received": True, "type": "email.bounced", "duplicate": True})
    row = await pool.fetchrow("SELECT status::text, metadata FROM messages WHERE id = $1", outbound[1]["id"])
    assert row["status"] == "failed" and row["metadata"]["error"] == "Mailbox does not exist"
    assert await pool.fetchval("SELECT count(*) FROM webhook_events WHERE provider = 'resend'") == 1


async def test_a_malformed_secret_is_a_configuration_error(settings, pool, redis, api, outbound):
    app = build_app(dataclasses.replace(settings, resend_webhook_secret="whsec_not base64!"),
                    Deps(pool=pool, redis=redis))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        body = tracking("email.delivered", "re_1", api.org_id)
        status, reply = await post(client, body, signed_headers(body))
    assert status == 503 and "RESEND_WEBHOOK_SECRET" in reply["error"]


@pytest.mark.parametrize("body, message", [
    (b"{not json", "Invalid JSON body"),
    (b"[1, 2]", "Event must be a JSON object with a type"),
    (event("email.received", to=["sales@acme.test"]), "Missing from field"),
])
async def test_a_signed_but_malformed_event_is_refused_and_not_recorded(hook, pool, body, message):
    assert await post(hook, body, signed_headers(body)) == (400, {"error": message})
    assert await pool.fetchval("SELECT count(*) FROM webhook_events") == 0


# --- statuses -----------------------------------------------------------------------------------------


async def deliver(hook, kind: str, org_id, email_id: str = "re_1", **data):
    body = tracking(kind, email_id, org_id, **data)
    status, reply = await post(hook, body, signed_headers(body))
    assert status == 200, reply
    return reply


@pytest.mark.parametrize("sequence, final", [
    (["email.sent", "email.delivered", "email.opened"], "read"),
    (["email.opened", "email.delivered", "email.sent"], "read"),  # out of order: never downgraded
    (["email.delivered", "email.bounced"], "delivered"),  # failed only from pending or sent
    (["email.bounced", "email.delivered", "email.opened"], "failed"),
    (["email.complained"], "failed"),
    (["email.clicked", "email.delivered"], "read"),
    (["email.delivery_delayed", "email.scheduled"], "sent"),  # no status of their own
])
async def test_statuses_only_move_forward(hook, api, outbound, pool, sequence, final):
    for kind in sequence:
        await deliver(hook, kind, api.org_id)
    assert await status_of(pool, outbound[1]["id"]) == final


async def test_replied_is_never_downgraded(hook, api, outbound, pool):
    await pool.execute("UPDATE messages SET status = 'replied' WHERE id = $1", outbound[1]["id"])
    for kind in ("email.delivered", "email.opened", "email.bounced"):
        assert (await deliver(hook, kind, api.org_id))["updated"] is False
    assert await status_of(pool, outbound[1]["id"]) == "replied"


async def test_the_update_stays_within_the_org_named_by_the_tag(hook, api, other, outbound, pool):
    lead = await insert_lead(pool, other.org_id, email="x@globex.test")
    theirs = await insert_message(pool, other.org_id, lead["id"], provider_id="re_2")
    # An event for re_2 naming org A (or no org, or a malformed one) touches nothing of org B.
    assert (await deliver(hook, "email.bounced", api.org_id, email_id="re_2"))["updated"] is False
    body = event("email.bounced", email_id="re_2")
    assert (await post(hook, body, signed_headers(body)))[1]["updated"] is False
    assert (await deliver(hook, "email.bounced", "not-a-uuid", email_id="re_2"))["updated"] is False
    assert await status_of(pool, theirs["id"]) == "sent"
    assert (await deliver(hook, "email.delivered", other.org_id, email_id="re_2"))["updated"] is True
    assert await status_of(pool, outbound[1]["id"]) == "sent"


# --- replies ------------------------------------------------------------------------------------------


async def save_sender(tenant, address: str):
    reply = await tenant.put("/api/dashboard/channels", json={"channel": "email", "config": {"fromEmail": address}})
    assert reply.status == 200, reply.body


async def receive(hook, sender: str, to: list[str], event_id: str | None = None):
    body = event("email.received", email_id=f"in_{uuid.uuid4().hex[:8]}", **{"from": sender}, to=to,
                 subject="Re: Hi")
    return await post(hook, body, signed_headers(body, event_id=event_id))


async def test_a_reply_is_logged_in_the_recipients_org_and_marks_the_email_replied(hook, api, outbound, pool):
    await save_sender(api, "Sales@Acme.test")
    status, reply = await receive(hook, "Ivan Petrenko <IVAN@example.COM>", ["sales@acme.test"], "msg_r1")
    assert status == 200 and reply["success"] is True and reply["type"] == "email.received"
    inbound = await pool.fetchrow("SELECT * FROM messages WHERE direction = 'inbound'")
    assert str(inbound["id"]) == reply["messageId"]
    assert (inbound["org_id"], inbound["lead_id"], inbound["parent_id"]) == \
        (api.org_id, outbound[0]["id"], outbound[1]["id"])
    assert inbound["metadata"] == {"subject": "Re: Hi", "fromEmail": "ivan@example.com", "verified": True}
    assert await status_of(pool, outbound[1]["id"]) == "replied"
    status, again = await receive(hook, "ivan@example.com", ["sales@acme.test"], "msg_r1")
    assert again["duplicate"] is True
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE direction = 'inbound'") == 1


async def test_a_reply_is_never_attributed_to_another_org(hook, api, other, outbound, pool):
    await save_sender(api, "sales@acme.test")
    await insert_lead(pool, other.org_id, email="ivan@example.com")  # the same person is also B's lead
    # An unknown recipient: nobody's conversation gets it.
    assert (await receive(hook, "ivan@example.com", ["nobody@acme.test"]))[1] == \
        {"received": True, "type": "email.received", "success": False, "error": "Unknown recipient address"}
    # A sender who is not a lead of the recipient's org.
    await save_sender(other, "hello@globex.test")
    assert (await receive(hook, "stranger@example.com", ["hello@globex.test"]))[1]["error"] == "Lead not found"
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE direction = 'inbound'") == 0
    # A proven address belongs to one org: B cannot take A's, so a reply to it goes to A's lead only.
    await prove_sender(pool, "sales@acme.test", api.org_id)
    refused = await other.put("/api/dashboard/channels",
                              json={"channel": "email", "config": {"fromEmail": "SALES@acme.test"}})
    assert refused.status == 409
    assert (await receive(hook, "ivan@example.com", ["sales@acme.test"]))[1]["success"] is True
    orgs = await pool.fetch("SELECT org_id FROM messages WHERE direction = 'inbound'")
    assert [row["org_id"] for row in orgs] == [api.org_id]


async def test_a_fresh_event_for_an_email_not_stored_yet_is_refused_so_resend_retries(hook, api, pool):
    recent = datetime.datetime.now(datetime.timezone.utc).isoformat()
    body = json.dumps({"type": "email.bounced", "created_at": recent,
                       "data": {"email_id": "re_early", "tags": {"org_id": str(api.org_id)}}}).encode()
    headers = signed_headers(body, event_id="msg_early")
    status, reply = await post(hook, body, headers)
    assert status == 409 and reply == {"error": "Unknown email id; retry later"}
    lead = await insert_lead(pool, api.org_id, email="late@example.com")
    message = await insert_message(pool, api.org_id, lead["id"], content="Hi", provider_id="re_early")
    status, reply = await post(hook, body, signed_headers(body, event_id="msg_early"))  # Resend's retry
    assert status == 200 and reply["updated"] is True
    assert await status_of(pool, message["id"]) == "failed"
