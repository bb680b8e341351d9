"""The first hour of a self-hosted deployment over HTTP and PostgreSQL: no billing means no plan limits, billing
set up later limits only those who pay nothing, and the contract's small promises (channels kept as given)."""
from __future__ import annotations

import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.resend import ResendEmail
from outreach.runtime.config import Settings
from outreach.storage.runs import month_start
from tests.conftest import tenant_on
from tests.factories import insert_lead, insert_usage

USAGE = "/api/dashboard/billing/usage"
SENDER = "Outreach <noreply@outreach.test>"
UNBILLED = {}
BILLED = {"LIQPAY_PUBLIC_KEY": "sandbox_pub", "LIQPAY_PRIVATE_KEY": "sandbox_priv"}


@pytest.fixture
async def deployment(settings, pool, redis, resend):
    """Factory: an app configured from these environment variables (billing or not), sending through Resend."""
    email = ResendEmail(resend.api_key, resend.url(), rate_per_second=1000, timeout=2)
    clients = []

    async def start(env: dict) -> TestClient:
        configured = Settings.from_env(env)
        app_settings = dataclasses.replace(settings, plan_limits=configured.plan_limits, email_from=SENDER,
                                           liqpay_public_key=configured.liqpay_public_key,
                                           liqpay_private_key=configured.liqpay_private_key)
        client = TestClient(TestServer(build_app(app_settings, Deps(pool=pool, redis=redis, email=email)),
                                       host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
    await email.close()


async def test_without_billing_a_new_org_is_self_hosted_with_no_limits(deployment, pool):
    api = await tenant_on(await deployment(UNBILLED), pool, "first-run")
    reply = await api.get(USAGE)
    assert reply.status == 200
    assert reply.body == {"minutes": 0, "telegramMessages": 0, "emails": 0, "plan": "self-hosted",
                          "limits": {"minutes": None, "telegram": None, "emails": None}}
    assert await pool.fetchval("SELECT plan::text FROM organizations WHERE id = $1", api.org_id) == "free"


async def test_without_billing_sends_are_counted_and_never_refused_for_the_plan(deployment, pool, resend):
    api = await tenant_on(await deployment(UNBILLED), pool, "first-run")
    lead = await insert_lead(pool, api.org_id, first_name="Ivan", email="ivan@example.com")
    await insert_usage(pool, api.org_id, month_start(), emails=5000)  # far over any paid plan's limit
    body = {"leadId": str(lead["id"]), "subject": "Hello", "body": "Hi Ivan", "toEmail": "ivan@example.com"}
    reply = await api.post("/api/dashboard/email/send", json=body)
    assert reply.status == 200, reply.body
    assert [sent["to"] for sent in resend.sent] == [["ivan@example.com"]]
    assert (await api.get(USAGE)).body["emails"] == 5001


async def test_with_billing_a_new_org_starts_on_free(deployment, pool, resend):
    api = await tenant_on(await deployment(BILLED), pool, "first-run")
    assert (await api.get(USAGE)).body == {"minutes": 0, "telegramMessages": 0, "emails": 0, "plan": "free",
                                           "limits": {"minutes": 0, "telegram": 0, "emails": 0}}
    lead = await insert_lead(pool, api.org_id, email="ivan@example.com")
    body = {"leadId": str(lead["id"]), "subject": "Hello", "body": "Hi", "toEmail": "ivan@example.com"}
    reply = await api.post("/api/dashboard/email/send", json=body)
    assert reply.status == 429 and "Email limit reached (0/0)" in reply.body["error"]
    assert resend.sent == []


async def test_configuration_changes_never_rewrite_a_plan_that_was_paid_for(deployment, pool):
    unbilled, billed = await deployment(UNBILLED), await deployment(BILLED)
    payer = await tenant_on(billed, pool, "payer")
    await pool.execute("UPDATE organizations SET plan = 'starter', plan_updated_at = now() WHERE id = $1",
                       payer.org_id)
    for client in (billed, unbilled, billed):
        api = await tenant_on(client, pool, "payer")
        body = (await api.get(USAGE)).body
        assert (body["plan"], body["limits"]) == ("starter", {"minutes": 500, "telegram": 100, "emails": 500})
    assert await pool.fetchval("SELECT plan::text FROM organizations WHERE id = $1", payer.org_id) == "starter"
    # one that never paid follows the configuration both ways, and nothing is written for it
    idle = await tenant_on(unbilled, pool, "idle")
    assert (await idle.get(USAGE)).body["plan"] == "self-hosted"
    assert (await (await tenant_on(billed, pool, "idle")).get(USAGE)).body["plan"] == "free"


async def test_the_default_plan_can_be_named(deployment, pool):
    api = await tenant_on(await deployment({"OUTREACH_DEFAULT_PLAN": "growth"}), pool, "named")
    body = (await api.get(USAGE)).body
    assert (body["plan"], body["limits"]) == ("growth", {"minutes": 2000, "telegram": 500, "emails": 2000})


async def test_a_campaign_keeps_an_empty_channel_list_as_given(api):
    reply = await api.post("/api/dashboard/campaigns", json={"name": "No channels yet", "channels": []})
    assert reply.status == 201 and reply.body["channels"] == []
    assert (await api.get(f"/api/dashboard/campaigns/{reply.body['id']}")).body["channels"] == []
    for missing in ({}, {"channels": None}, {"channels": False}, {"channels": ""}, {"channels": 0}):
        created = await api.post("/api/dashboard/campaigns", json={"name": "Default", **missing})
        assert (created.status, created.body["channels"]) == (201, ["voice"])
    for bad, error in (({"channels": {}}, "Channels must be an array"), ({"channels": "email"}, "Channels must be an array"),
                       ({"channels": ["fax"]}, "Invalid channel type")):
        assert (await api.post("/api/dashboard/campaigns", json={"name": "Bad", **bad})).body == {"error": error}


async def test_start_refuses_a_channel_nobody_can_write_for_before_changing_status(api, pool):
    body = {"name": "Dashboard campaign", "channels": ["email", "voice"], "channelPriority": ["email", "voice"]}
    campaign_id = (await api.post("/api/dashboard/campaigns", json=body)).body["id"]
    reply = await api.post(f"/api/dashboard/campaigns/{campaign_id}/start")
    assert (reply.status, reply.body) == (400, {"error": (
        "The email channel has no message template: set settings.templates.email (subject and body), "
        "or configure OpenRouter (OPENROUTER_API_KEY) for AI drafts.")})
    assert (await api.get(f"/api/dashboard/campaigns/{campaign_id}")).body["status"] == "draft"
    templates = {"templates": {"email": {"subject": "Hi {{firstName}}", "body": "A note for {{company}}"}}}
    assert (await api.patch(f"/api/dashboard/campaigns/{campaign_id}", json={"settings": templates})).status == 200
    started = await api.post(f"/api/dashboard/campaigns/{campaign_id}/start")
    assert (started.status, started.body["status"]) == (200, "active")
