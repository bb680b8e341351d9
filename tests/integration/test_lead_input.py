"""Lead input over HTTP: phones in E.164, no control characters, a per-plan lead quota held atomically, and an
import read and inserted in chunks (duplicates found across chunks, memory independent of the row count)."""
from __future__ import annotations

import asyncio
import dataclasses
import tracemalloc

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http import leads as lead_routes
from outreach.http.app import Deps, build_app
from outreach.runtime import policy
from outreach.runtime.models import Plan
from tests.conftest import Api, tenant_on
from tests.integration.test_leads import csv_form

BASE = "/api/dashboard/leads"
BAD_PHONE = "phone must be an international number with its country code, like +14155551234"


async def test_phones_are_normalised_on_create_and_update_and_bad_ones_refused(api, pool):
    created = await api.post(BASE, json={"firstName": "Ivan", "phone": " +1 (415) 555-0101 "})
    assert (created.status, created.body["phone"]) == (201, "+14155550101")
    path = f"{BASE}/{created.body['id']}"
    updated = await api.patch(path, json={"phone": "0044 20 7123 4567"})
    assert (updated.status, updated.body["phone"]) == (200, "+442071234567")
    for phone in ("4155550101", "sip:agent@evil.example", "client:alice", "+1", "+14155550101;ext=1"):
        assert (await api.post(BASE, json={"firstName": "X", "phone": phone})).body == {"error": BAD_PHONE}, phone
        assert (await api.put(path, json={"phone": phone})).body == {"error": BAD_PHONE}, phone
    assert await pool.fetchval("SELECT array_agg(phone) FROM leads") == ["+442071234567"]


async def test_control_characters_in_lead_fields_are_refused(api, pool):
    lead = (await api.post(BASE, json={"firstName": "Keep"})).body
    for field, value in (("firstName", "Eve\r\nBcc: all@example.com"), ("lastName", "x\x00"),
                         ("company", "Acme\u2028Inc"), ("email", "a@example.com\rX"), ("timezone", "UTC\x1b")):
        expected = {"error": f"{field} must not contain control characters"}
        assert (await api.post(BASE, json={"firstName": "New", field: value})).body == expected, field
        assert (await api.patch(f"{BASE}/{lead['id']}", json={field: value})).body == expected, field
    assert await pool.fetchval("SELECT count(*) FROM leads") == 1
    assert (await api.get(f"{BASE}/{lead['id']}")).body == lead


async def test_import_normalises_phones_and_refuses_bad_ones_and_control_characters_row_by_row(api, pool):
    content = ("firstName,phone,company\n"
               "A,+1 (415) 555-0101,Acme\n"
               "B,+14155550101,Acme\n"  # the same phone once normalised: a duplicate
               "C,415-555-0102,Acme\n"
               "D,sip:x@evil.example,Acme\n"
               '"E\r\nBcc: x",+14155550103,Acme\n'
               "F,,Acme\x07\n").encode()
    reply = await api.post(BASE + "/import", data=csv_form(content))
    assert reply.status == 200, reply.body
    assert reply.body == {"success": True, "imported": 1, "total": 6, "skipped": 5, "duplicates": 1, "errors": [
        {"row": 3, "error": BAD_PHONE}, {"row": 4, "error": BAD_PHONE},
        {"row": 5, "error": "firstName must not contain control characters"},
        {"row": 6, "error": "company must not contain control characters"}]}
    assert await pool.fetchval("SELECT phone FROM leads") == "+14155550101"


@pytest.fixture
async def capped(settings, pool, redis):
    """Apps whose `starter` plan keeps at most 3 leads."""
    table = {**policy.DEFAULT_PLAN_LIMITS,
             Plan.STARTER: dataclasses.replace(policy.DEFAULT_PLAN_LIMITS[Plan.STARTER], leads=3)}
    clients = []

    async def make() -> TestClient:
        app = build_app(dataclasses.replace(settings, plan_limits=table), Deps(pool=pool, redis=redis))
        clients.append(TestClient(TestServer(app, host="127.0.0.1")))
        await clients[-1].start_server()
        return clients[-1]

    yield make
    for client in clients:
        await client.close()


async def test_the_lead_quota_holds_for_creates_and_imports_all_or_nothing(capped, pool):
    api = await tenant_on(await capped(), pool, "acme", plan="starter")
    for name in ("A", "B"):
        assert (await api.post(BASE, json={"firstName": name})).status == 201
    reply = await api.post(BASE + "/import", data=csv_form(b"email\nc@example.com\nd@example.com\n"))
    assert reply.status == 429
    assert reply.body["error"] == ("Lead limit reached: the starter plan keeps up to 3 leads and the organization "
                                   "has 2; this import would add 2. Delete leads or upgrade the plan.")
    assert (reply.body["limit"], reply.body["used"]) == (3, 2)
    assert await pool.fetchval("SELECT count(*) FROM leads") == 2  # all or nothing
    reply = await api.post(BASE + "/import", data=csv_form(b"email\nc@example.com\nC@example.com\n"))
    assert (reply.status, reply.body["imported"], reply.body["duplicates"]) == (200, 1, 1)  # duplicates use no room
    reply = await api.post(BASE, json={"firstName": "E"})
    assert reply.status == 429 and reply.body["error"].startswith("Lead limit reached: the starter plan keeps up to 3")
    other = await tenant_on(api.http, pool, "globex", plan="enterprise")
    assert (await other.post(BASE, json={"firstName": "Z"})).status == 201


async def test_concurrent_creates_with_room_for_one_make_exactly_one(capped, pool):
    replicas = [await capped(), await capped()]
    api = await tenant_on(replicas[0], pool, "acme", plan="starter")
    for name in ("A", "B"):
        await api.post(BASE, json={"firstName": name})
    clients = [Api(replicas[index % 2], api.token, api.org_id) for index in range(10)]
    replies = await asyncio.gather(*(client.post(BASE, json={"firstName": f"N{index}"})
                                     for index, client in enumerate(clients)))
    assert sorted(reply.status for reply in replies) == [201] + [429] * 9
    assert await pool.fetchval("SELECT count(*) FROM leads WHERE org_id = $1", api.org_id) == 3


async def test_an_import_bigger_than_a_chunk_finds_duplicates_across_chunks(api, pool, monkeypatch):
    monkeypatch.setattr(lead_routes, "IMPORT_CHUNK", 100)
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", api.org_id)
    rows = [f"Lead{index},lead{index}@example.com,+1415555{index:04d}" for index in range(1050)]
    rows += ["Again,LEAD7@example.com,", "Phone again,,+1 415 555 1049", "New,new@example.com,"]
    content = ("firstName,email,phone\n" + "\n".join(rows) + "\n").encode()
    reply = await api.post(BASE + "/import", data=csv_form(content))
    assert reply.body == {"success": True, "imported": 1051, "total": 1053, "skipped": 2, "duplicates": 2,
                          "errors": []}
    names = await pool.fetchval("SELECT array_agg(first_name ORDER BY first_name) FROM leads "
                                "WHERE first_name IN ('Again', 'Phone again', 'New', 'Lead7')")
    assert names == ["Lead7", "New"]


async def peak_import_memory(api, rows: int) -> int:
    content = ("firstName,email\n" + "".join(f"Lead{index},lead{index}@example.com\n"
                                              for index in range(rows))).encode()
    form = csv_form(content)
    tracemalloc.start()
    try:
        reply = await api.post(BASE + "/import", data=form)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reply.body["imported"] == rows
    await api.http.app[lead_routes.keys.DB].execute("DELETE FROM leads")
    return peak


async def test_import_memory_does_not_grow_with_the_row_count(settings, pool, redis, monkeypatch):
    """Python's allocations during imports of 4,000 and of 16,000 rows (chunks of 500, uploads past 64 kB on
    disk): the larger file costs about the same, beyond the test client's own copy of its bigger body."""
    monkeypatch.setattr(lead_routes, "IMPORT_CHUNK", 500)
    monkeypatch.setattr(lead_routes, "SPOOL_BYTES", 64 * 1024)
    app = build_app(dataclasses.replace(settings, max_import_bytes=8 * 1024 * 1024), Deps(pool=pool, redis=redis))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        api = await tenant_on(client, pool, "acme", plan="enterprise")
        small, large = await peak_import_memory(api, 4_000), await peak_import_memory(api, 16_000)
    finally:
        await client.close()
    body_growth = 12_000 * len("Lead00000,lead00000@example.com\n")
    assert large - small < body_growth + 256 * 1024, (small, large)
