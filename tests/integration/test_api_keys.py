"""API key routes over HTTP and PostgreSQL: keys are shown once, authenticate, and belong to one org."""
from __future__ import annotations

import datetime
import re
import uuid

from tests.conftest import Api

BASE = "/api/dashboard/settings/api-keys"


async def create(api, name="Prod"):
    reply = await api.post(BASE, json={"name": name})
    assert reply.status == 201, reply.body
    return reply.body


async def test_create_shows_the_key_once_and_lists_it_without_it(api, pool):
    body = await create(api, name="  Prod  ")
    assert set(body) == {"key", "id", "name", "prefix", "last4", "createdAt", "createdBy", "expiresAt"}
    assert body["createdBy"] is None and body["expiresAt"] is None  # the fixture's key was made on the command line
    assert re.fullmatch(r"tp_live_[0-9a-f]{64}", body["key"])
    assert body["name"] == "Prod" and body["prefix"] == body["key"][:12] and body["last4"] == body["key"][-4:]
    listed = (await api.get(BASE)).body["keys"]
    assert [key["name"] for key in listed] == ["Prod", "test"]  # newest first; "test" is the fixture's key
    assert listed[0]["id"] == body["id"]
    assert set(listed[0]) == {"id", "name", "prefix", "last4", "createdAt", "lastUsedAt", "createdBy", "expiresAt"}
    assert listed[0]["lastUsedAt"] is None and body["key"] not in str(listed)
    stored = await pool.fetchval("SELECT key_hash FROM api_keys WHERE id = $1", uuid.UUID(body["id"]))
    assert stored != body["key"] and len(stored) == 64


async def test_created_key_authenticates_until_deleted(api, http):
    body = await create(api)
    new = Api(http, body["key"])
    reply = await new.get(BASE)
    assert reply.status == 200
    used = next(key for key in reply.body["keys"] if key["id"] == body["id"])
    assert used["lastUsedAt"] is not None and used["lastUsedAt"].endswith("Z")
    deleted = await api.delete(f"{BASE}?id={body['id']}")
    assert deleted.status == 200 and deleted.body == {"success": True}
    refused = await new.get(BASE)
    assert refused.status == 401 and refused.body == {"error": "Unauthorized"}
    assert body["id"] not in [key["id"] for key in (await api.get(BASE)).body["keys"]]


async def test_other_org_cannot_see_or_delete_a_key(api, other, http):
    body = await create(api)
    assert body["id"] not in [key["id"] for key in (await other.get(BASE)).body["keys"]]
    reply = await other.delete(f"{BASE}?id={body['id']}")
    assert reply.status == 404 and reply.body == {"error": "Key not found"}
    assert (await Api(http, body["key"]).get(BASE)).status == 200
    assert body["id"] in [key["id"] for key in (await api.get(BASE)).body["keys"]]


async def test_bad_input(api, pool):
    body = await create(api)
    cases = [
        ("POST", BASE, {"json": {}}, 400, "Name is required"),
        ("POST", BASE, {"json": {"name": "   "}}, 400, "Name is required"),
        ("POST", BASE, {"json": {"name": None}}, 400, "Name is required"),
        ("POST", BASE, {"json": {"name": ["Prod"]}}, 400, "Name is required"),
        ("POST", BASE, {"raw": b"{oops", "headers": {"Content-Type": "application/json"}}, 400, "Invalid JSON body"),
        ("POST", BASE, {"raw": b""}, 400, "Request body must be a JSON object"),
        ("POST", BASE, {"json": ["Prod"]}, 400, "Request body must be a JSON object"),
        ("DELETE", BASE, {}, 400, "Key ID is required"),
        ("DELETE", BASE + "?id=", {}, 400, "Key ID is required"),
        ("DELETE", BASE + "?other=" + body["id"], {}, 400, "Key ID is required"),
        ("DELETE", BASE + "?id=not-a-uuid", {}, 404, "Key not found"),
        ("DELETE", BASE + "?id=" + body["id"][:-1] + "g", {}, 404, "Key not found"),
        ("DELETE", f"{BASE}?id={uuid.uuid4()}", {}, 404, "Key not found"),
    ]
    for method, target, kwargs, status, message in cases:
        reply = await api.call(method, target, **kwargs)
        assert reply.status == status, (method, target, kwargs, reply.body)
        assert reply.body == {"error": message}, (method, target, kwargs, reply.body)
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 2
    assert body["id"] in [key["id"] for key in (await api.get(BASE + "?id=x&page=abc")).body["keys"]]


async def test_a_key_records_its_creator_and_keys_made_with_it_inherit_them(http, clerk):
    admin = Api(http, clerk.mint("user_admin", v=2, o={"id": "org_team", "rol": "admin"}))
    made = await create(admin, name="ci")
    assert made["createdBy"] == "user_admin"
    child = await create(Api(http, made["key"]), name="made by ci")
    assert child["createdBy"] == "user_admin"
    listed = {key["name"]: key["createdBy"] for key in (await admin.get(BASE)).body["keys"]}
    assert listed == {"ci": "user_admin", "made by ci": "user_admin"}


async def test_an_expired_key_is_a_401(api, http, pool):
    soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
    body = (await api.post(BASE, json={"name": "temp", "expiresAt": soon})).body
    assert body["expiresAt"].endswith("Z")
    listed = next(key for key in (await api.get(BASE)).body["keys"] if key["id"] == body["id"])
    assert listed["expiresAt"] == body["expiresAt"]
    temp = Api(http, body["key"])
    assert (await temp.get(BASE)).status == 200
    # An hour passes.
    await pool.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
                       uuid.UUID(body["id"]))
    refused = await temp.get(BASE)
    assert (refused.status, refused.body) == (401, {"error": "Unauthorized"})


async def test_expiry_must_be_a_future_time(api, pool):
    past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)).isoformat()
    for value, message in ((past, "expiresAt must be in the future"),
                           ("tomorrow", "expiresAt must be an ISO 8601 date and time"),
                           (12, "expiresAt must be an ISO 8601 date and time")):
        reply = await api.post(BASE, json={"name": "temp", "expiresAt": value})
        assert (reply.status, reply.body) == (400, {"error": message}), value
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == 1
