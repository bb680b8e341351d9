"""Phone number routes (list, get, update) over HTTP and PostgreSQL."""
from __future__ import annotations

import datetime
import uuid

from tests.factories import insert_campaign, insert_number

BASE = "/api/dashboard/numbers"
T0 = datetime.datetime(2026, 3, 24, 10, 0, tzinfo=datetime.timezone.utc)
ROW_KEYS = {"id", "orgId", "number", "label", "provider", "status", "campaignId", "releaseAfter", "createdAt"}


async def test_list_is_newest_first_and_of_the_org_only(api, other, pool):
    old = await insert_number(pool, api.org_id, number="+15550000001", created_at=T0, provider_sid="PN1")
    new = await insert_number(pool, api.org_id, number="+15550000002", created_at=T0 + datetime.timedelta(days=1),
                              label="Sales", status="pending")
    await insert_number(pool, other.org_id, number="+15550000003")
    reply = await api.get(BASE)
    assert reply.status == 200 and set(reply.body) == {"numbers"}
    assert [row["id"] for row in reply.body["numbers"]] == [str(new["id"]), str(old["id"])]
    assert reply.body["numbers"][1] == {
        "id": str(old["id"]), "orgId": str(api.org_id), "number": "+15550000001", "label": None,
        "provider": "twilio", "status": "active", "campaignId": None, "releaseAfter": None,
        "createdAt": "2026-03-24T10:00:00.000Z",
    }
    assert reply.body["numbers"][0]["label"] == "Sales" and reply.body["numbers"][0]["status"] == "pending"
    assert [row["number"] for row in (await other.get(BASE)).body["numbers"]] == ["+15550000003"]


async def test_get_one(api, pool):
    number = await insert_number(pool, api.org_id, label="Main")
    reply = await api.get(f"{BASE}/{number['id']}")
    assert reply.status == 200 and set(reply.body) == ROW_KEYS
    assert reply.body["label"] == "Main" and reply.body["number"] == number["number"]


async def test_update_label_and_campaign_with_put_and_patch(api, pool):
    number = await insert_number(pool, api.org_id)
    campaign = await insert_campaign(pool, api.org_id)
    path = f"{BASE}/{number['id']}"
    reply = await api.put(path, json={"label": "  Support  ", "campaignId": str(campaign["id"])})
    assert reply.status == 200 and set(reply.body) == ROW_KEYS
    assert reply.body["label"] == "Support" and reply.body["campaignId"] == str(campaign["id"])
    reply = await api.patch(path, json={"label": ""})
    assert reply.body["label"] is None and reply.body["campaignId"] == str(campaign["id"])
    reply = await api.patch(path, json={"label": "Again"})
    assert reply.body["label"] == "Again"
    for falsy in (None, "", False, 0):
        reply = await api.patch(path, json={"campaignId": falsy, "label": falsy})
        assert reply.status == 200, (falsy, reply.body)
        assert reply.body["campaignId"] is None and reply.body["label"] is None
    assert (await api.get(path)).body == reply.body


async def test_other_orgs_number_is_not_found_and_unchanged(api, other, pool):
    theirs = await insert_number(pool, other.org_id, label="Theirs")
    their_campaign = await insert_campaign(pool, other.org_id)
    path = f"{BASE}/{theirs['id']}"
    assert (await api.get(path)).body == {"error": "Not found"}
    for method in ("PUT", "PATCH"):
        reply = await api.call(method, path, json={"label": "Mine", "campaignId": str(their_campaign["id"])})
        assert reply.status == 404 and reply.body == {"error": "Not found"}
        reply = await api.call(method, path, json={"label": "Mine"})
        assert reply.status == 404
    assert (await other.get(path)).body["label"] == "Theirs"
    assert (await other.get(path)).body["campaignId"] is None


async def test_bad_input(api, other, pool):
    number = await insert_number(pool, api.org_id, label="Keep")
    campaign = await insert_campaign(pool, api.org_id)
    await api.patch(f"{BASE}/{number['id']}", json={"campaignId": str(campaign["id"])})
    their_campaign = await insert_campaign(pool, other.org_id)
    path = f"{BASE}/{number['id']}"
    cases = [
        ("GET", f"{BASE}/not-a-uuid", {}, 404, "Not found"),
        ("GET", f"{BASE}/{uuid.uuid4()}", {}, 404, "Not found"),
        ("PUT", f"{BASE}/not-a-uuid", {"json": {"label": "x"}}, 404, "Not found"),
        ("PATCH", f"{BASE}/{uuid.uuid4()}", {"json": {"label": "x"}}, 404, "Not found"),
        ("PUT", path, {"json": {}}, 400, "No fields to update"),
        ("PUT", path, {"json": {"name": "x"}}, 400, "No fields to update"),
        ("PUT", path, {"raw": b"{broken", "headers": {"Content-Type": "application/json"}}, 400, "Invalid JSON body"),
        ("PUT", path, {"raw": b""}, 400, "Request body must be a JSON object"),
        ("PATCH", path, {"json": ["label"]}, 400, "Request body must be a JSON object"),
        ("PATCH", path, {"json": {"label": 5}}, 400, "label must be a string"),
        ("PATCH", path, {"json": {"label": ["x"]}}, 400, "label must be a string"),
        ("PATCH", path, {"json": {"label": True}}, 400, "label must be a string"),
        ("PATCH", path, {"json": {"label": "nul\u0000byte"}}, 400, None),
        ("PATCH", path, {"json": {"campaignId": "nope"}}, 400, "Campaign not found"),
        ("PATCH", path, {"json": {"campaignId": 7}}, 400, "Campaign not found"),
        ("PATCH", path, {"json": {"campaignId": {"id": "x"}}}, 400, "Campaign not found"),
        ("PATCH", path, {"json": {"campaignId": str(uuid.uuid4())}}, 400, "Campaign not found"),
        ("PUT", path, {"json": {"label": "New", "campaignId": str(their_campaign["id"])}}, 400, "Campaign not found"),
        ("PUT", path, {"json": {"label": 1, "campaignId": str(campaign["id"])}}, 400, "label must be a string"),
    ]
    for method, target, kwargs, status, message in cases:
        reply = await api.call(method, target, **kwargs)
        assert reply.status == status, (method, target, kwargs, reply.body)
        assert set(reply.body) == {"error"}, reply.body
        if message:
            assert reply.body["error"] == message, (method, target, kwargs, reply.body)
    after = (await api.get(path)).body
    assert after["label"] == "Keep" and after["campaignId"] == str(campaign["id"])
