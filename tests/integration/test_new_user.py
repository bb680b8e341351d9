"""A new user's first campaign, as the README tells it: billing unconfigured, OUTREACH_SANDBOX=1, an API key from
the CLI, leads imported, a campaign with templates executed on a real local Ray; and what execute and start say
when a campaign's messages cannot be written."""
from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.actors import remote
from outreach.http.app import Deps, build_app
from outreach.runtime.config import Settings
from tests.conftest import TEST_RUNNER_OPTIONS, Api
from tests.integration.test_cli import run_cli
from tests.integration.test_execution import SLOW, setup_campaign, wait_until

BASE = "/api/dashboard/campaigns"
LEADS = 120
TEMPLATES = {"templates": {"email": {"subject": "A quick idea for {{company}}", "body": "Hi {{firstName}}, worth a call?"},
                           "telegram": "Hi {{firstName}}!"}}


@pytest.fixture
async def fresh_http(ray_cluster, ray_settings, settings, pool, redis):
    """An API and its campaign actors configured as a fresh install is: sandbox, and no Stripe nor LiqPay."""
    out_of_the_box = Settings.from_env({"OUTREACH_SANDBOX": "1"}).plan_limits
    runtime = remote.RayRuntime(dataclasses.replace(ray_settings, plan_limits=out_of_the_box), TEST_RUNNER_OPTIONS)
    app = build_app(dataclasses.replace(settings, sandbox=True, plan_limits=out_of_the_box),
                    Deps(pool=pool, redis=redis, runtime=runtime))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


def leads_csv(count: int) -> bytes:
    rows = ["firstName,lastName,email,company"] + [f"Lead{i},Demo,lead{i}@example.com,Company {i % 7}"
                                                    for i in range(count)]
    return ("\n".join(rows) + "\n").encode()


async def test_a_new_user_runs_a_first_campaign_end_to_end(fresh_http, database_url, pool, tmp_path):
    code, out, err = await run_cli("api-key", "create", "--org", "New User",
                                   env={"DATABASE_URL": database_url, "XDG_DATA_HOME": str(tmp_path)})
    assert code == 0, err
    api = Api(fresh_http, out.strip())
    form = aiohttp.FormData()
    form.add_field("file", leads_csv(LEADS), filename="leads.csv", content_type="text/csv")
    imported = await api.post("/api/dashboard/leads/import", data=form)
    assert (imported.status, imported.body["imported"]) == (200, LEADS)
    body = {"name": "First campaign", "channels": ["email"], "channelPriority": ["email"], "settings": TEMPLATES}
    campaign_id = (await api.post(BASE, json=body)).body["id"]
    lead_ids = [lead["id"] for lead in (await api.get("/api/dashboard/leads?limit=100")).body["leads"]]
    lead_ids += [lead["id"] for lead in (await api.get("/api/dashboard/leads?limit=100&page=2")).body["leads"]]
    assert (await api.post(f"{BASE}/{campaign_id}/leads", json={"leadIds": lead_ids})).body["assigned"] == LEADS

    reply = await api.post(f"{BASE}/{campaign_id}/execute")
    assert reply.status == 200, reply.body
    progress = reply.body["progress"]
    assert (progress["status"], progress["total"], progress["processed"], progress["pending"]) == (
        "completed", LEADS, LEADS, 0)
    assert len(progress["results"]) == LEADS and "reason" not in progress
    usage = (await api.get("/api/dashboard/billing/usage")).body
    assert usage["plan"] == "self-hosted" and usage["limits"] == {"minutes": None, "telegram": None, "emails": None}
    assert usage["emails"] == progress["succeeded"] > 0  # counted, never refused for the plan


async def test_execute_refuses_a_campaign_whose_messages_nobody_can_write(ray_api, pool):
    campaign_id = await setup_campaign(ray_api, pool, 5, channels=("telegram", "email"))
    await ray_api.patch(f"{BASE}/{campaign_id}", json={"settings": {}})  # as the dashboard creates it
    for path in ("execute", "execute?wait=false", "start"):
        reply = await ray_api.post(f"{BASE}/{campaign_id}/{path}")
        assert (reply.status, reply.body) == (400, {"error": (
            "The telegram and email channels have no message template: set settings.templates.telegram and "
            "settings.templates.email (subject and body), or configure OpenRouter (OPENROUTER_API_KEY) for AI drafts.")})
    assert (await ray_api.get(f"{BASE}/{campaign_id}")).body["status"] == "draft"
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) == 0
    assert remote.existing_campaign_actor(campaign_id) is None  # no run was started


async def test_execute_of_a_resumed_run_answers_the_campaigns_last_results(ray_api, pool):
    total = 300
    campaign_id = await setup_campaign(ray_api, pool, total, settings=SLOW)
    assert (await ray_api.post(f"{BASE}/{campaign_id}/execute?wait=false")).status == 202

    async def some_ended():
        return await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE campaign_id = $1 AND state = 'sent'",
                                   campaign_id) >= 40

    await wait_until(some_ended)
    assert (await ray_api.post(f"{BASE}/{campaign_id}/pause")).status == 200
    before = await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE campaign_id = $1 AND state <> 'pending'",
                                 campaign_id)
    assert 0 < before < total
    reply = await ray_api.post(f"{BASE}/{campaign_id}/execute")  # resumes the paused run and waits for it
    progress = reply.body["progress"]
    assert (reply.status, progress["status"], progress["processed"]) == (200, "completed", total)
    assert len(progress["results"]) == total
    assert {result["leadId"] for result in progress["results"]} == {
        str(row["lead_id"]) for row in await pool.fetch("SELECT lead_id FROM campaign_leads WHERE campaign_id = $1",
                                                        campaign_id)}
