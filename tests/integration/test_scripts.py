"""Script routes over HTTP and PostgreSQL."""
from __future__ import annotations

import uuid

BASE = "/api/dashboard/scripts"


async def create(api, **fields):
    reply = await api.post(BASE, json={"name": "Intro", **fields})
    assert reply.status == 201, reply.body
    return reply.body


async def backdate(pool, script_id, hours: int) -> None:
    await pool.execute("UPDATE scripts SET updated_at = now() - make_interval(hours => $2) WHERE id = $1",
                       uuid.UUID(script_id), hours)


async def test_create_applies_contract_defaults(api):
    body = await create(api, name="  Intro  ")
    assert body["name"] == "Intro" and body["content"] == "" and body["objectionHandlers"] == []
    assert body["isDefault"] is False and body["orgId"] == str(api.org_id)
    assert body["createdAt"].endswith("Z") and body["updatedAt"].endswith("Z")
    assert set(body) == {"id", "orgId", "name", "content", "objectionHandlers", "isDefault", "createdAt", "updatedAt"}
    full = await create(api, content="Hello {name}", objectionHandlers=["Too expensive: ...", "Busy: ..."])
    assert full["content"] == "Hello {name}" and full["objectionHandlers"] == ["Too expensive: ...", "Busy: ..."]
    assert (await api.get(f"{BASE}/{full['id']}")).body == full


async def test_list_is_a_bare_array_of_the_org_newest_update_first(api, other, pool):
    first = await create(api, name="first")
    second = await create(api, name="second")
    await create(other, name="theirs")
    await backdate(pool, first["id"], 2)
    await backdate(pool, second["id"], 1)
    assert [row["name"] for row in (await api.get(BASE)).body] == ["second", "first"]
    assert (await api.put(f"{BASE}/{first['id']}", json={"content": "new"})).status == 200
    listed = (await api.get(BASE)).body
    assert isinstance(listed, list) and [row["name"] for row in listed] == ["first", "second"]
    assert [row["name"] for row in (await other.get(BASE)).body] == ["theirs"]


async def test_update_is_partial_and_bumps_updated_at(api, pool):
    script = await create(api, content="old", objectionHandlers=["a"])
    path = f"{BASE}/{script['id']}"
    await backdate(pool, script["id"], 1)
    before = (await api.get(path)).body["updatedAt"]
    reply = await api.put(path, json={"name": " Renamed "})
    assert reply.status == 200
    assert reply.body["name"] == "Renamed" and reply.body["content"] == "old" and reply.body["objectionHandlers"] == ["a"]
    assert reply.body["updatedAt"] > before and reply.body["createdAt"] == script["createdAt"]
    reply = await api.patch(path, json={"content": "", "objectionHandlers": []})
    assert reply.body["content"] == "" and reply.body["objectionHandlers"] == [] and reply.body["name"] == "Renamed"
    await backdate(pool, script["id"], 1)
    stamp = (await api.get(path)).body["updatedAt"]
    assert (await api.put(path, json={})).body["updatedAt"] > stamp


async def test_delete_script_used_by_a_campaign_clears_the_campaign_script(api):
    script = await create(api)
    campaign = await api.post("/api/dashboard/campaigns", json={"name": "Q1", "scriptId": script["id"]})
    assert campaign.status == 201 and campaign.body["scriptId"] == script["id"]
    reply = await api.delete(f"{BASE}/{script['id']}")
    assert reply.status == 200 and reply.body == {"success": True}
    assert (await api.get(f"{BASE}/{script['id']}")).status == 404
    assert (await api.delete(f"{BASE}/{script['id']}")).body == {"error": "Not found"}
    after = await api.get(f"/api/dashboard/campaigns/{campaign.body['id']}")
    assert after.status == 200 and after.body["scriptId"] is None
    assert (await api.get(BASE)).body == []


async def test_other_org_ids_are_not_found_and_unchanged(api, other):
    script = await create(api, content="mine", objectionHandlers=["x"])
    path = f"{BASE}/{script['id']}"
    for method, kwargs in [("GET", {}), ("PUT", {"json": {"name": "stolen"}}), ("PATCH", {"json": {"content": ""}}),
                           ("DELETE", {})]:
        reply = await other.call(method, path, **kwargs)
        assert reply.status == 404 and reply.body == {"error": "Not found"}, (method, reply.body)
    assert (await api.get(path)).body == script


async def test_requires_authentication(http):
    async with http.get(BASE) as response:
        assert response.status == 401 and await response.json() == {"error": "Unauthorized"}


async def test_bad_input(api, pool):
    script = await create(api, content="keep", objectionHandlers=["keep"])
    path = f"{BASE}/{script['id']}"
    cases = [
        ("POST", BASE, {"json": {}}, 400, "Name is required"),
        ("POST", BASE, {"json": {"name": "   "}}, 400, "Name is required"),
        ("POST", BASE, {"json": {"name": 7}}, 400, "Name is required"),
        ("POST", BASE, {"json": {"name": "x", "content": 5}}, 400, "content must be a string"),
        ("POST", BASE, {"json": {"name": "x", "content": ["a"]}}, 400, "content must be a string"),
        ("POST", BASE, {"json": {"name": "x", "objectionHandlers": "no"}}, 400,
         "objectionHandlers must be an array of strings"),
        ("POST", BASE, {"json": {"name": "x", "objectionHandlers": ["ok", 3]}}, 400,
         "objectionHandlers must be an array of strings"),
        ("POST", BASE, {"json": {"name": "x", "objectionHandlers": {"a": "b"}}}, 400,
         "objectionHandlers must be an array of strings"),
        ("POST", BASE, {"json": {"name": "nul\u0000byte"}}, 400, "Invalid value"),
        ("POST", BASE, {"raw": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
         "Invalid JSON body"),
        ("POST", BASE, {"json": ["name"]}, 400, "Request body must be a JSON object"),
        ("PUT", path, {"json": {"name": ""}}, 400, "Name cannot be empty"),
        ("PUT", path, {"json": {"name": None}}, 400, "Name cannot be empty"),
        ("PATCH", path, {"json": {"name": "  "}}, 400, "Name cannot be empty"),
        ("PUT", path, {"json": {"content": None}}, 400, "content must be a string"),
        ("PUT", path, {"json": {"name": "ok", "content": 1}}, 400, "content must be a string"),
        ("PUT", path, {"json": {"objectionHandlers": None}}, 400, "objectionHandlers must be an array of strings"),
        ("PATCH", path, {"json": {"name": "ok", "objectionHandlers": [None]}}, 400,
         "objectionHandlers must be an array of strings"),
        ("PUT", path, {"raw": b"nope"}, 400, "Invalid JSON body"),
        ("PUT", path, {"raw": b""}, 400, "Request body must be a JSON object"),
        ("GET", BASE + "/not-a-uuid", {}, 404, "Not found"),
        ("PUT", BASE + "/not-a-uuid", {"json": {"name": "x"}}, 404, "Not found"),
        ("DELETE", BASE + "/not-a-uuid", {}, 404, "Not found"),
        ("GET", f"{BASE}/{uuid.uuid4()}", {}, 404, "Not found"),
        ("PUT", f"{BASE}/{uuid.uuid4()}", {"json": {"name": "x"}}, 404, "Not found"),
        ("DELETE", f"{BASE}/{uuid.uuid4()}", {}, 404, "Not found"),
    ]
    for method, target, kwargs, status, message in cases:
        reply = await api.call(method, target, **kwargs)
        assert reply.status == status, (method, target, kwargs, reply.body)
        assert reply.body == {"error": message}, (method, target, kwargs, reply.body)
    assert (await api.get(path)).body == script
    assert await pool.fetchval("SELECT count(*) FROM scripts") == 1
