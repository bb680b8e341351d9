"""Campaigns executed on a real local Ray over real PostgreSQL and Redis, with sandbox providers."""
from __future__ import annotations

import asyncio
import uuid

import orjson

from tests.conftest import TEST_RUNNER_OPTIONS
from tests.integration.test_runner import TEMPLATES

BASE = "/api/dashboard/campaigns"
# Slow enough that a run is still going when the test acts on it: 20 waves of 50 ms at the tests'
# concurrency of 20 sends (TEST_RUNNER_OPTIONS).
SLOW_RUN = 400
SLOW = {"sandbox": {"latencyMs": 50}}


async def setup_campaign(api, pool, count: int, *, channels=("email",), plan="enterprise", leads=None,
                         settings=None, start=False):
    await pool.execute("UPDATE organizations SET plan = $2 WHERE id = $1", api.org_id, plan)
    body = {"name": "run", "channels": list(channels), "channelPriority": list(channels),
            "settings": {**TEMPLATES, **(settings or {})}}
    campaign_id = (await api.post(BASE, json=body)).body["id"]
    rows = leads or [{"firstName": f"L{i}", "email": f"l{i}@example.com"} for i in range(count)]
    if rows:
        csv = "firstName,email,telegram,phone\n" + "\n".join(
            f"{r.get('firstName', '')},{r.get('email', '')},{r.get('telegramUsername', '')},{r.get('phone', '')}"
            for r in rows)
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("file", csv.encode(), filename="l.csv", content_type="text/csv")
        assert (await api.post("/api/dashboard/leads/import", data=form)).body["imported"] == len(rows)
        ids = [str(row["id"]) for row in await pool.fetch("SELECT id FROM leads WHERE org_id = $1", api.org_id)]
        await api.post(f"{BASE}/{campaign_id}/leads", json={"leadIds": ids})
    return campaign_id


async def wait_until(condition, timeout: float = 60):
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def assert_each_lead_once(pool, campaign_id, total: int):
    states = await pool.fetch("SELECT state::text, count(*) FROM campaign_leads WHERE campaign_id = $1 GROUP BY 1",
                              campaign_id)
    by_state = {row["state"]: row["count"] for row in states}
    assert sum(by_state.values()) == total
    assert by_state.get("pending", 0) == 0 and by_state.get("in_progress", 0) == 0, by_state
    duplicates = await pool.fetchval(
        "SELECT count(*) FROM (SELECT lead_id, count(*) FROM messages WHERE campaign_id = $1 AND status = 'sent' "
        "GROUP BY lead_id HAVING count(*) > 1) d", campaign_id)
    assert duplicates == 0
    misfiled = await pool.fetchval(
        "SELECT count(*) FROM attempts a JOIN campaign_leads cl USING (campaign_id, lead_id) "
        "WHERE a.campaign_id = $1 AND a.outcome = 'sent' AND cl.state <> 'sent'", campaign_id)
    assert misfiled == 0  # a lead that was reached ends `sent`, even when a crash split the two writes


async def test_execute_waits_and_answers_the_contract_shape(ray_api, pool):
    campaign_id = await setup_campaign(ray_api, pool, 40, settings={"sandbox": {"outcomes": {"email": {"sent": 1}}}})
    reply = await ray_api.post(f"{BASE}/{campaign_id}/execute")
    assert reply.status == 200, reply.body
    progress = reply.body["progress"]
    assert reply.body["success"] is True and progress["campaignId"] == campaign_id
    assert (progress["total"], progress["processed"], progress["succeeded"], progress["failed"]) == (40, 40, 40, 0)
    assert len(progress["results"]) == 40
    assert set(progress["results"][0]) == {"leadId", "leadName", "channel", "status"}
    assert (await ray_api.get(f"{BASE}/{campaign_id}")).body["status"] == "completed"
    again = await ray_api.post(f"{BASE}/{campaign_id}/execute")
    assert again.status == 400 and again.body == {"error": "Campaign is already completed"}


async def test_execute_refusals(ray_api, pool, make_tenant):
    empty = (await ray_api.post(BASE, json={"name": "empty"})).body["id"]
    reply = await ray_api.post(f"{BASE}/{empty}/execute")
    assert reply.status == 400 and reply.body == {"error": "No leads assigned to this campaign. Assign leads first."}
    assert (await ray_api.post(f"{BASE}/{empty}/execute?wait=perhaps")).status == 400
    assert (await ray_api.post(f"{BASE}/{uuid.uuid4()}/execute")).body == {"error": "Campaign not found"}
    assert (await ray_api.post(f"{BASE}/nope/execute")).status == 404
    stranger = await make_tenant("stranger")
    campaign_id = await setup_campaign(ray_api, pool, 1)
    assert (await stranger.post(f"{BASE}/{campaign_id}/execute")).status == 404
    assert await pool.fetchval("SELECT count(*) FROM attempts") == 0


async def test_execute_twice_concurrently_contacts_each_lead_once(ray_api, pool):
    campaign_id = await setup_campaign(ray_api, pool, 120, settings={"sandbox": {"latencyMs": 5}})
    first, second = await asyncio.gather(ray_api.post(f"{BASE}/{campaign_id}/execute"),
                                         ray_api.post(f"{BASE}/{campaign_id}/execute"))
    assert first.status == second.status == 200
    assert first.body["progress"]["processed"] == second.body["progress"]["processed"] == 120
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) >= 120
    await assert_each_lead_once(pool, campaign_id, 120)


async def test_pause_then_start_repeatedly_never_contacts_a_lead_twice(ray_api, pool):
    campaign_id = await setup_campaign(ray_api, pool, SLOW_RUN, settings=SLOW)
    reply = await ray_api.post(f"{BASE}/{campaign_id}/execute?wait=false")
    assert reply.status == 202 and reply.body["websocket"].endswith("/progress")
    for _ in range(3):
        assert (await ray_api.post(f"{BASE}/{campaign_id}/pause")).status == 200
        paused_at = await pool.fetchval("SELECT now()")
        await asyncio.sleep(0.05)  # give a (wrongly) still-running runner the chance to start sends
        assert await pool.fetchval("SELECT count(*) FROM attempts WHERE started_at > $1", paused_at) == 0
        assert (await ray_api.post(f"{BASE}/{campaign_id}/start")).status == 200

    async def completed():
        return await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"

    await wait_until(completed)
    await assert_each_lead_once(pool, campaign_id, SLOW_RUN)


async def test_killing_the_campaign_actor_mid_run_resumes_it(ray_api, pool, ray_cluster):
    campaign_id = await setup_campaign(ray_api, pool, SLOW_RUN, settings=SLOW)
    await ray_api.post(f"{BASE}/{campaign_id}/execute?wait=false")

    async def some_done():
        return await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome IS NOT NULL") >= 30

    await wait_until(some_done)
    ray_cluster.kill(ray_cluster.get_actor(f"campaign:{campaign_id}", namespace="outreach"), no_restart=False)
    assert await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE state = 'pending'") > 0

    async def completed():
        return await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"

    await wait_until(completed, timeout=120)
    await assert_each_lead_once(pool, campaign_id, SLOW_RUN)
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", campaign_id) == SLOW_RUN


async def test_a_new_api_process_resumes_active_campaigns(ray_api, pool, redis, ray_cluster, ray_settings):
    from outreach import service
    from outreach.actors import remote
    from outreach.http.app import Deps

    campaign_id = await setup_campaign(ray_api, pool, SLOW_RUN, settings=SLOW)
    await ray_api.post(f"{BASE}/{campaign_id}/execute?wait=false")

    async def some_done():
        return await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome IS NOT NULL") >= 20

    await wait_until(some_done)
    # The old process is gone, and its local Ray with it: the actor dies without a restart.
    ray_cluster.kill(ray_cluster.get_actor(f"campaign:{campaign_id}", namespace="outreach"), no_restart=True)
    assert await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE state = 'pending'") > 0
    await wait_until(lambda: asyncio.to_thread(lambda: remote.existing_campaign_actor(campaign_id) is None))
    runtime = remote.RayRuntime(ray_settings, TEST_RUNNER_OPTIONS)
    refs = await service.resume_campaigns(Deps(pool=pool, redis=redis, runtime=runtime))
    summaries = await asyncio.gather(*refs)
    assert [s["status"] for s in summaries] == ["completed"]
    await assert_each_lead_once(pool, campaign_id, SLOW_RUN)


async def test_two_campaigns_share_a_telegram_account_limit(ray_api, pool):
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (phone, session, status, assigned_org_id, max_daily_messages) "
        "VALUES ('+380500000001', 'sandbox', 'active', $1, 5) RETURNING id", ray_api.org_id)
    leads = [{"firstName": f"T{i}", "telegramUsername": f"user{i}"} for i in range(8)]
    first = await setup_campaign(ray_api, pool, 0, channels=("telegram",), leads=leads)
    lead_ids = [str(row["id"]) for row in await pool.fetch("SELECT id FROM leads WHERE org_id = $1", ray_api.org_id)]
    await ray_api.delete(f"{BASE}/{first}/leads", json={"leadIds": lead_ids[4:]})
    second = (await ray_api.post(BASE, json={"name": "two", "channels": ["telegram"], "channelPriority": ["telegram"],
                                             "settings": TEMPLATES})).body["id"]
    await ray_api.post(f"{BASE}/{second}/leads", json={"leadIds": lead_ids[4:]})
    replies = await asyncio.gather(ray_api.post(f"{BASE}/{first}/execute"), ray_api.post(f"{BASE}/{second}/execute"))
    assert all(reply.status == 200 for reply in replies)
    sent = await pool.fetchval("SELECT count(*) FROM attempts WHERE channel = 'telegram'")
    assert sent == 5
    assert await pool.fetchval("SELECT daily_message_count FROM telegram_accounts WHERE id = $1", account) == 5
    waiting = await pool.fetch("SELECT error FROM campaign_leads WHERE state = 'pending'")
    assert len(waiting) == 3 and {row["error"] for row in waiting} == {"No Telegram account with capacity today"}
    # Its waiting leads stay pending until the account's next day, and the campaign wakes then by itself.
    statuses = {reply.body["progress"]["status"] for reply in replies}
    assert "active" in statuses and "paused" not in statuses
    next_day = await pool.fetchval("SELECT next_due_at FROM campaigns WHERE status = 'active'")
    assert {row["due_at"] for row in await pool.fetch("SELECT due_at FROM campaign_leads WHERE state = 'pending'")} \
        == {next_day}


async def test_progress_feed_snapshot_events_and_resume(ray_api, pool, ray_http):
    campaign_id = await setup_campaign(ray_api, pool, 50)
    path = f"{BASE}/{campaign_id}/progress"
    headers = {"Authorization": f"Bearer {ray_api.token}"}
    async with ray_http.ws_connect(path, headers=headers) as socket:
        snapshot = orjson.loads((await socket.receive()).data)
        assert snapshot["type"] == "snapshot" and snapshot["status"] == "draft" and snapshot["total"] == 50
        await ray_api.post(f"{BASE}/{campaign_id}/execute?wait=false")
        seen = []
        async with asyncio.timeout(60):
            while not seen or seen[-1]["type"] != "done":
                seen.append(orjson.loads((await socket.receive()).data))
    kinds = {event["type"] for event in seen}
    assert {"status", "progress", "result", "done"} <= kinds
    assert seen[-1]["processed"] == 50
    results = [r for event in seen if event["type"] == "result" for r in event["results"]]
    assert len(results) == 50
    middle = seen[len(seen) // 2]["cursor"]
    # A `?token=` handshake must come from an allowed origin: here, as from the live page this server serves.
    async with ray_http.ws_connect(f"{path}?after={middle}&token={ray_api.token}",
                                   origin=str(ray_http.make_url("")).rstrip("/")) as socket:
        replay = [orjson.loads((await socket.receive()).data)]
        while replay[-1]["type"] != "done":
            replay.append(orjson.loads((await socket.receive()).data))
    assert replay[0]["type"] == "snapshot" and replay[0]["status"] == "completed"
    assert [event["cursor"] for event in replay[1:]] == [event["cursor"] for event in seen[len(seen) // 2 + 1:]]


async def test_progress_feed_refuses_strangers_and_shares_one_reader(ray_api, pool, ray_http, make_tenant):
    campaign_id = await setup_campaign(ray_api, pool, 5)
    path = f"{BASE}/{campaign_id}/progress"
    stranger = await make_tenant("stranger")
    async with ray_http.get(path, headers={"Authorization": f"Bearer {stranger.token}"}) as response:
        assert response.status == 404
    async with ray_http.get(path) as response:
        assert response.status == 401
    async with ray_http.get(f"{path}?after=yesterday", headers={"Authorization": f"Bearer {ray_api.token}"}) as r:
        assert r.status == 400
    same_site = str(ray_http.make_url("")).rstrip("/")
    sockets = [await ray_http.ws_connect(f"{path}?token={ray_api.token}", origin=same_site) for _ in range(5)]
    for socket in sockets:
        await socket.receive()
    hub = ray_http.app[__import__("outreach.http.keys", fromlist=["HUB"]).HUB]
    assert len(hub.cursors) == 1 and hub.reader is not None  # one campaign, read by the one reader
    for socket in sockets:
        await socket.close()
