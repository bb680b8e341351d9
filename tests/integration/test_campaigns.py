"""Campaign routes over HTTP, PostgreSQL and Redis."""
from __future__ import annotations

import uuid

BASE = "/api/dashboard/campaigns"


async def create(api, **fields):
    reply = await api.post(BASE, json={"name": "Q1", **fields})
    assert reply.status == 201, reply.body
    return reply.body


async def make_lead(api, **fields):
    reply = await api.post("/api/dashboard/leads", json={"email": f"{uuid.uuid4().hex[:8]}@example.com", **fields})
    assert reply.status == 201, reply.body
    return reply.body


async def test_create_applies_contract_defaults(api):
    body = await create(api)
    assert body["status"] == "draft"
    assert body["channels"] == ["voice"]
    assert body["channelPriority"] == ["telegram", "voice", "email"]
    assert body["settings"] == {} and body["scriptId"] is None and body["scheduledAt"] is None
    assert body["createdAt"].endswith("Z")
    assert set(body) == {"id", "orgId", "name", "scriptId", "voiceConfigId", "status", "channels",
                         "channelPriority", "scheduledAt", "settings", "createdAt", "updatedAt", "statusReason"}


async def test_list_pages_filters_and_counts_leads_as_numbers(api):
    first = await create(api, name="one")
    await create(api, name="two")
    lead = await make_lead(api)
    assert (await api.post(f"{BASE}/{first['id']}/leads", json={"leadIds": [lead["id"]]})).status == 200
    reply = await api.get(BASE + "?limit=1&page=2")
    assert reply.body["pagination"] == {"page": 2, "limit": 1, "total": 2, "totalPages": 2}
    assert reply.body["campaigns"][0]["name"] == "one"
    assert reply.body["campaigns"][0]["leadCount"] == 1
    assert (await api.get(BASE + "?status=active")).body["campaigns"] == []
    assert len((await api.get(BASE + "?status=all")).body["campaigns"]) == 2


async def test_get_includes_lead_stats(api):
    campaign = await create(api)
    lead = await make_lead(api)
    await api.post(f"{BASE}/{campaign['id']}/leads", json={"leadIds": [lead["id"]]})
    await api.patch(f"/api/dashboard/leads/{lead['id']}", json={"status": "qualified"})
    reply = await api.get(f"{BASE}/{campaign['id']}")
    assert reply.body["stats"] == {"total": 1, "contacted": 0, "qualified": 1, "converted": 0, "rejected": 0}


async def test_get_shows_each_step_of_the_sequence(api):
    sequence = [{"channel": "telegram"}, {"channel": "email", "delay": {"days": 2}}]
    campaign = await create(api, settings={"sequence": sequence})
    lead = await make_lead(api)
    await api.post(f"{BASE}/{campaign['id']}/leads", json={"leadIds": [lead["id"]]})
    body = (await api.get(f"{BASE}/{campaign['id']}")).body
    assert body["steps"] == [
        {"step": 0, "channel": "telegram", "sent": 0, "failed": 0, "waiting": 1, "nextDueAt": None},
        {"step": 1, "channel": "email", "sent": 0, "failed": 0, "waiting": 0, "nextDueAt": None}]
    assert body["nextDueAt"] is None  # the lead is due as soon as the campaign starts
    plain = (await api.get(f"{BASE}/{(await create(api))['id']}")).body
    assert [step["channel"] for step in plain["steps"]] == ["any"]  # no sequence: one step, as before


async def test_invalid_sequences_are_refused_with_the_reason(api):
    cases = [
        ([{"channel": "fax"}], "settings.sequence[0].channel must be one of any, email, telegram, voice, got 'fax'"),
        ([{"delay": {"hours": -2}}], "settings.sequence[0].delay.hours must not be negative"),
        ([{"channel": "email"}] * 21, "settings.sequence has 21 steps; at most 20 are allowed"),
        ([{"templates": {"email": {"subject": "Hi {{first_name}}", "body": "x"}}}],
         "settings.sequence[0].templates.email.subject uses an unknown variable {{first_name}} "
         "(known: {{firstName}}, {{lastName}}, {{company}}, {{fullName}})"),
    ]
    campaign = await create(api)
    for sequence, message in cases:
        created = await api.post(BASE, json={"name": "bad", "settings": {"sequence": sequence}})
        assert (created.status, created.body) == (400, {"error": message})
        updated = await api.patch(f"{BASE}/{campaign['id']}", json={"settings": {"sequence": sequence}})
        assert (updated.status, updated.body) == (400, {"error": message})
    listed = (await api.get(BASE)).body["campaigns"]
    assert [row["name"] for row in listed] == ["Q1"]  # nothing was written
    assert (await api.get(f"{BASE}/{campaign['id']}")).body["settings"] == {}


async def test_update_accepts_script_of_the_org_only(api, other):
    campaign = await create(api)
    mine = await api.post("/api/dashboard/scripts", json={"name": "S"})
    theirs = await other.post("/api/dashboard/scripts", json={"name": "T"})
    if mine.status == 404:  # scripts routes arrive with their own module
        return
    reply = await api.patch(f"{BASE}/{campaign['id']}", json={"scriptId": mine.body["id"]})
    assert reply.status == 200 and reply.body["scriptId"] == mine.body["id"]
    reply = await api.put(f"{BASE}/{campaign['id']}", json={"scriptId": theirs.body["id"]})
    assert reply.status == 400 and reply.body == {"error": "Script not found"}


async def test_start_pause_transitions(api):
    campaign = await create(api)
    path = f"{BASE}/{campaign['id']}"
    assert (await api.post(path + "/pause")).body == {"error": "Campaign is not active"}
    reply = await api.post(path + "/start")
    assert reply.status == 200 and reply.body["status"] == "active"
    assert (await api.post(path + "/start")).body == {"error": "Campaign is already active"}
    assert (await api.post(path + "/pause")).body["status"] == "paused"
    assert (await api.patch(path, json={"status": "active"})).status == 400
    assert (await api.patch(path, json={"status": "completed"})).body["status"] == "completed"
    assert (await api.post(path + "/start")).body == {"error": "Cannot start a completed campaign"}


async def test_delete_running_campaign_is_refused_then_allowed_when_paused(api):
    campaign = await create(api)
    lead = await make_lead(api)
    path = f"{BASE}/{campaign['id']}"
    await api.post(path + "/leads", json={"leadIds": [lead["id"]]})
    await api.post(path + "/start")
    assert (await api.delete(path)).status == 409
    await api.post(path + "/pause")
    assert (await api.delete(path)).body == {"success": True}
    assert (await api.get(path)).status == 404
    assert (await api.get(f"/api/dashboard/leads/{lead['id']}")).body["campaignId"] is None


async def test_assign_list_and_remove_leads(api):
    campaign = await create(api)
    leads = [await make_lead(api) for _ in range(3)]
    path = f"{BASE}/{campaign['id']}/leads"
    reply = await api.post(path, json={"leadIds": [lead["id"] for lead in leads]})
    assert reply.body == {"success": True, "assigned": 3}
    listed = await api.get(path + "?limit=2")
    assert listed.body["total"] == 3 and len(listed.body["leads"]) == 2
    reply = await api.delete(path, json={"leadIds": [leads[0]["id"]]})
    assert reply.body == {"success": True, "removed": 1}
    assert (await api.get(path)).body["total"] == 2


async def test_moving_a_pending_lead_out_of_a_running_campaign_is_a_conflict(api):
    running = await create(api, name="running")
    other_campaign = await create(api, name="other")
    lead = await make_lead(api)
    await api.post(f"{BASE}/{running['id']}/leads", json={"leadIds": [lead["id"]]})
    await api.post(f"{BASE}/{running['id']}/start")
    reply = await api.post(f"{BASE}/{other_campaign['id']}/leads", json={"leadIds": [lead["id"]]})
    assert reply.status == 409
    assert (await api.get(f"/api/dashboard/leads/{lead['id']}")).body["campaignId"] == running["id"]


async def test_bad_input(api):
    campaign = await create(api)
    path = f"{BASE}/{campaign['id']}"
    cases = [
        ("POST", BASE, {"json": {}}, 400, "Name is required"),
        ("POST", BASE, {"json": {"name": "  "}}, 400, "Name is required"),
        ("POST", BASE, {"json": {"name": "x", "channels": "voice"}}, 400, "Channels must be an array"),
        ("POST", BASE, {"json": {"name": "x", "channels": ["fax"]}}, 400, "Invalid channel type"),
        ("POST", BASE, {"json": {"name": "x", "channelPriority": ["fax"]}}, 400, "Invalid channelPriority"),
        ("POST", BASE, {"json": {"name": "x", "scriptId": "nope"}}, 400, "scriptId must be a UUID"),
        ("POST", BASE, {"json": {"name": "x", "scriptId": str(uuid.uuid4())}}, 400, "Script not found"),
        ("POST", BASE, {"json": {"name": "x", "scheduledAt": "tomorrow"}}, 400, None),
        ("POST", BASE, {"json": {"name": "x", "settings": [1]}}, 400, "settings must be an object"),
        ("POST", BASE, {"raw": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
         "Invalid JSON body"),
        ("POST", BASE, {"json": [1, 2]}, 400, "Request body must be a JSON object"),
        ("PATCH", path, {"json": {"name": ""}}, 400, "Name cannot be empty"),
        ("PATCH", path, {"json": {"status": "done"}}, 400, "Invalid status"),
        ("PATCH", path, {"json": {"channels": None}}, 400, "Invalid channels"),
        ("PATCH", path, {"json": {"channels": ["voice", 3]}}, 400, "Invalid channels"),
        ("PATCH", path, {"raw": b"nope"}, 400, "Invalid JSON body"),
        ("GET", BASE + "?page=abc", {}, 400, "page must be a whole number"),
        ("GET", BASE + "?limit=1.5", {}, 400, "limit must be a whole number"),
        ("GET", BASE + "?status=sleeping", {}, 400, None),
        ("GET", BASE + "/not-a-uuid", {}, 404, "Not found"),
        ("POST", path + "/leads", {"json": {"leadIds": []}}, 400, "leadIds must be a non-empty array"),
        ("POST", path + "/leads", {"json": {"leadIds": "x"}}, 400, "leadIds must be a non-empty array"),
        ("POST", path + "/leads", {"json": {"leadIds": ["x"]}}, 400, None),
        ("POST", path + "/leads", {"json": {"leadIds": [str(uuid.uuid4())]}}, 400, "No valid leads found to assign"),
        ("DELETE", path + "/leads", {"json": {}}, 400, "leadIds must be a non-empty array"),
        ("GET", path + "/leads?page=x", {}, 400, "page must be a whole number"),
        ("POST", f"{BASE}/{uuid.uuid4()}/leads", {"json": {"leadIds": []}}, 404, "Campaign not found"),
    ]
    for method, target, kwargs, status, message in cases:
        reply = await api.call(method, target, **kwargs)
        assert reply.status == status, (method, target, kwargs, reply.body)
        assert set(reply.body) >= {"error"}, reply.body
        if message:
            assert reply.body["error"] == message, (method, target, reply.body)
    after = await api.get(path)
    assert after.body["name"] == "Q1" and after.body["status"] == "draft"


async def test_execute_without_a_runtime_changes_nothing(api):
    """An API process that runs no campaigns answers 503 and leaves the campaign as it was (it used to mark it
    active first, with nothing to run it)."""
    campaign = await create(api)
    lead = await make_lead(api)
    await api.post(f"{BASE}/{campaign['id']}/leads", json={"leadIds": [lead["id"]]})
    reply = await api.post(f"{BASE}/{campaign['id']}/execute")
    assert reply.status == 503 and "runtime" in reply.body["error"]
    assert (await api.get(f"{BASE}/{campaign['id']}")).body["status"] == "draft"


async def test_progress_cursor_is_ascii_digits_within_64_bits(api):
    """Regression: `isdigit` took "²" (and an out-of-range id) as a cursor, which Redis then refused mid-feed."""
    campaign = await create(api)
    for cursor in ("²", "1-²", "5-", "18446744073709551616-0", "abc"):
        reply = await api.get(f"{BASE}/{campaign['id']}/progress?after={cursor}")
        assert (reply.status, reply.body) == (400, {"error": "after must be a cursor from this feed"}), cursor
