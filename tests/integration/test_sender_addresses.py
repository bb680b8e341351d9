"""Sender addresses are proven before anything is sent from them: a confirmation link mailed to the address, or
its domain verified at Resend (the real adapters against the local Resend fake). A claim is not ownership: an
unproven claim blocks nobody, and a proven address is held by one organization."""
from __future__ import annotations

import dataclasses
import re
import time
import uuid
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.actors import senders
from outreach.http.app import Deps, build_app
from outreach.providers.resend import ResendEmail
from outreach.providers.resend_domains import ResendDomains
from outreach.runtime import sender_proof
from outreach.runtime.ports import SendJob
from tests.conftest import Api, tenant_on
from tests.factories import insert_lead
from tests.fakes.resend import server_error

CHANNELS = "/api/dashboard/channels"
SENDERS = CHANNELS + "/email/senders"
VERIFY = CHANNELS + "/email/verify"
DEPLOYMENT_SENDER = "Outreach <noreply@outreach.test>"
UNPROVEN = ("The sender address sales@acme.io is not verified: open the confirmation link sent to it, or verify "
            "its domain at Resend (POST /api/dashboard/channels/email/verify)")
HELD = {"error": "This sender address is verified by another organization"}


@pytest.fixture
async def http(settings, pool, redis, resend):
    """This module's app sends through the Resend fake and reads its domains."""
    email = ResendEmail(resend.api_key, resend.url(), rate_per_second=1000, timeout=2)
    domains = ResendDomains(resend.api_key, resend.url(), timeout=2)
    app = build_app(dataclasses.replace(settings, email_from=DEPLOYMENT_SENDER),
                    Deps(pool=pool, redis=redis, email=email, sender_domains=domains))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()
    await email.close()
    await domains.close()


def email_config(from_email: str, reply_to: str | None = None) -> dict:
    config = {"fromEmail": from_email, "fromName": "Sales"}
    if reply_to:
        config["replyTo"] = reply_to
    return {"channel": "email", "config": config}


async def claim(tenant: Api, address: str, reply_to: str | None = None) -> None:
    reply = await tenant.put(CHANNELS, json=email_config(address, reply_to))
    assert reply.status == 200, reply.body


def confirmation_path(resend, address: str) -> str:
    """The link of the last confirmation email sent to `address`, as a path on the test server."""
    mail = [sent for sent in resend.sent if sent["to"] == [address]][-1]
    assert mail["from"] == DEPLOYMENT_SENDER and mail["subject"] == "Confirm your sender address"
    link = re.search(r"http\S+/api/email/confirm\?token=\S+", mail["text"]).group(0)
    return urlsplit(link).path + "?" + urlsplit(link).query


async def open_link(http, path: str) -> tuple[int, dict]:
    async with http.get(path) as response:
        return response.status, await response.json()


async def claims(tenant: Api) -> list[tuple[str, bool, str | None]]:
    senders_ = (await tenant.get(SENDERS)).body["senders"]
    return [(row["address"], row["verified"], row["verifiedBy"]) for row in senders_]


async def test_an_unproven_claim_blocks_nobody(api, other, pool):
    await claim(api, "sales@acme.io", "replies@acme.io")
    await claim(other, "Sales@ACME.io")
    await claim(other, "ops@globex.io", "replies@acme.io")
    rows = await pool.fetch("SELECT address, org_id, verified_at FROM sender_addresses ORDER BY address, org_id")
    assert sorted((row["address"], row["org_id"]) for row in rows) == sorted([
        ("ops@globex.io", other.org_id), ("replies@acme.io", api.org_id), ("replies@acme.io", other.org_id),
        ("sales@acme.io", api.org_id)])
    assert all(row["verified_at"] is None for row in rows)
    assert await claims(api) == [("replies@acme.io", False, None), ("sales@acme.io", False, None)]


async def test_sends_from_an_unproven_address_are_refused_with_the_reason(api, http, clerk, pool, resend):
    await claim(api, "sales@acme.io")
    await pool.execute("UPDATE organizations SET plan = 'starter' WHERE id = $1", api.org_id)
    lead = await insert_lead(pool, api.org_id, first_name="Ivan", email="ivan@example.com")
    sent = await api.post("/api/dashboard/email/send", json={
        "leadId": str(lead["id"]), "subject": "Hi", "body": "Hello", "toEmail": "ivan@example.com"})
    assert (sent.status, sent.body) == (400, {"error": UNPROVEN})
    me = Api(http, clerk.mint("user_me", email="me@acme.io"))
    await claim(me, "sales@acme.io")
    tested = await me.post("/api/dashboard/email/test")
    assert (tested.status, tested.body) == (400, {"error": UNPROVEN})
    assert resend.requests == [] and await pool.fetchval("SELECT count(*) FROM messages") == 0


async def test_campaign_sends_wait_until_the_address_is_proven(api, http, settings, pool, resend):
    campaign_settings = dataclasses.replace(settings, resend_api_key=resend.api_key, resend_api_url=resend.url())
    await claim(api, "sales@acme.io")
    job = SendJob(str(uuid.uuid4()), str(api.org_id), {"email": "ivan@example.com"}, "email",
                  f"{uuid.uuid4()}:email", "Hello", "Hi Ivan")
    refused = await (await senders.email_dispatcher(campaign_settings, pool, api.org_id)).dispatch(job)
    assert (refused.outcome, refused.channel_blocked, refused.error) == ("not_sent", True, UNPROVEN)
    assert resend.requests == []
    assert (await api.post(VERIFY, json={"address": "sales@acme.io"})).status == 202
    assert (await open_link(http, confirmation_path(resend, "sales@acme.io")))[0] == 200
    sent = await (await senders.email_dispatcher(campaign_settings, pool, api.org_id)).dispatch(job)
    assert sent.outcome == "sent"
    assert resend.sent[-1]["from"] == "Sales <sales@acme.io>" and resend.sent[-1]["to"] == ["ivan@example.com"]


async def test_the_confirmation_link_proves_the_address(api, http, pool, resend):
    await claim(api, "sales@acme.io")
    started = await api.post(VERIFY, json={"address": "Sales@Acme.io"})
    assert (started.status, started.body) == (202, {"address": "sales@acme.io", "verified": False, "method": "link"})
    assert await claims(api) == [("sales@acme.io", False, None)]
    status, body = await open_link(http, confirmation_path(resend, "sales@acme.io"))
    assert (status, body) == (200, {"verified": True, "address": "sales@acme.io"})
    assert await claims(api) == [("sales@acme.io", True, "link")]
    again = await api.post(VERIFY, json={"address": "sales@acme.io"})
    assert (again.status, again.body) == (200, {"address": "sales@acme.io", "verified": True, "method": "link"})
    await pool.execute("UPDATE organizations SET plan = 'starter' WHERE id = $1", api.org_id)
    lead = await insert_lead(pool, api.org_id, first_name="Ivan", email="ivan@example.com")
    sent = await api.post("/api/dashboard/email/send", json={
        "leadId": str(lead["id"]), "subject": "Hi", "body": "Hello", "toEmail": "ivan@example.com"})
    assert sent.status == 200, sent.body
    assert resend.sent[-1]["from"] == "Sales <sales@acme.io>"


async def test_a_proven_address_is_held_by_one_organization(api, other, http, pool, resend):
    await claim(api, "sales@acme.io")
    await claim(other, "sales@acme.io")
    assert (await api.post(VERIFY, json={"address": "sales@acme.io"})).status == 202
    api_link = confirmation_path(resend, "sales@acme.io")
    assert (await other.post(VERIFY, json={"address": "sales@acme.io"})).status == 202
    other_link = confirmation_path(resend, "sales@acme.io")
    assert api_link != other_link
    assert (await open_link(http, other_link))[0] == 200  # `other` proves it first
    assert await open_link(http, api_link) == (409, HELD)
    refused = await api.post(VERIFY, json={"address": "sales@acme.io"})
    assert (refused.status, refused.body) == (409, HELD)
    assert await claims(api) == [("sales@acme.io", False, None)]
    assert await claims(other) == [("sales@acme.io", True, "link")]
    newcomer = await tenant_on(http, pool, "initech")
    refused = await newcomer.put(CHANNELS, json=email_config("SALES@acme.io"))
    assert (refused.status, refused.body) == (409, HELD)


async def test_a_domain_verified_at_resend_proves_at_once_for_one_organization(api, other, http, resend):
    resend.domains.update({"acme.io": "verified", "globex.io": "pending"})
    await claim(api, "sales@acme.io")
    proven = await api.post(VERIFY, json={"address": "sales@acme.io"})
    assert (proven.status, proven.body) == (200, {"address": "sales@acme.io", "verified": True, "method": "domain"})
    assert resend.sent == []
    await claim(other, "ops@globex.io")
    pending = await other.post(VERIFY, json={"address": "ops@globex.io"})
    assert pending.status == 202 and [mail["to"] for mail in resend.sent] == [["ops@globex.io"]]
    # acme.io is evidently acme's: its verification at Resend proves nothing for another organization.
    await claim(other, "ceo@acme.io")
    assert (await other.post(VERIFY, json={"address": "ceo@acme.io"})).status == 202
    assert await claims(other) == [("ceo@acme.io", False, None)]
    refused = await other.put(CHANNELS, json=email_config("sales@acme.io"))
    assert (refused.status, refused.body) == (409, HELD)


async def test_the_deployments_own_domain_cannot_be_claimed(api, pool):
    for body, key in ((email_config("sales@outreach.test"), "fromEmail"),
                      (email_config("sales@MAIL.outreach.test"), "fromEmail"),
                      (email_config("sales@acme.io", "replies@outreach.test"), "replyTo")):
        reply = await api.put(CHANNELS, json=body)
        assert (reply.status, reply.body) == (400, {"error": f"config.{key} is at this deployment's own sending "
                                                             f"domain, which an organization cannot use"})
    await claim(api, "sales@notoutreach.test")
    assert await pool.fetchval("SELECT count(*) FROM channel_configs") == 1


async def test_bad_links_and_requests_are_refused(api, http, settings, pool, resend):
    invalid = (400, {"error": "This confirmation link is invalid or has expired"})
    await claim(api, "sales@acme.io")
    expired = sender_proof.sign_token(settings.secret_key, api.org_id, "sales@acme.io", int(time.time()) - 1)
    forged = sender_proof.sign_token("another-secret", api.org_id, "sales@acme.io", int(time.time()) + 60)
    good = sender_proof.sign_token(settings.secret_key, api.org_id, "sales@acme.io", int(time.time()) + 60)
    for token in (expired, forged, good[:-2], good.replace(".", ""), "x" * 50, "é.é"):
        assert await open_link(http, f"/api/email/confirm?token={token}") == invalid, token
    assert await open_link(http, "/api/email/confirm") == (400, {"error": "token is required"})
    cases = [({"address": "nobody@acme.io"}, 400, "Save this address in your email settings first"),
             ({}, 400, "address is required"), ({"address": "not an address"}, 400,
                                                 "address must be a valid email address")]
    for body, status, message in cases:
        reply = await api.post(VERIFY, json=body)
        assert (reply.status, reply.body) == (status, {"error": message}), body
    assert resend.sent == [] and await claims(api) == [("sales@acme.io", False, None)]


async def test_one_confirmation_email_per_address_every_ten_minutes(api, resend):
    await claim(api, "sales@acme.io")
    assert (await api.post(VERIFY, json={"address": "sales@acme.io"})).status == 202
    again = await api.post(VERIFY, json={"address": "sales@acme.io"})
    assert again.status == 429 and 0 < int(again.headers["Retry-After"]) <= 600
    assert len(resend.sent) == 1


async def test_a_confirmation_email_that_failed_can_be_asked_for_again_at_once(api, resend):
    await claim(api, "sales@acme.io")
    resend.queue(*[server_error()] * 20)  # more than the adapter's retries
    failed = await api.post(VERIFY, json={"address": "sales@acme.io"})
    assert failed.status == 502 and failed.body["error"].startswith("The confirmation email could not be sent")
    resend.replies.clear()
    assert (await api.post(VERIFY, json={"address": "sales@acme.io"})).status == 202
    assert [mail["to"] for mail in resend.sent] == [["sales@acme.io"]]
