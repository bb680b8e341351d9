"""Channel config routes over HTTP and PostgreSQL."""
from __future__ import annotations

import asyncio

BASE = "/api/dashboard/channels"
SENDER = {"fromEmail": "sales@acme.test", "fromName": "Acme Sales", "replyTo": "team@acme.test"}


async def test_get_lists_nothing_at_first(api):
    reply = await api.get(BASE)
    assert reply.status == 200 and reply.body == {"configs": []}


async def test_upsert_inserts_then_replaces_the_config_only(api, pool):
    created = await api.put(BASE, json={"channel": "email", "config": {"fromEmail": " sales@acme.test "}})
    assert created.status == 200
    assert created.body["config"] == {"fromEmail": "sales@acme.test", "fromName": "", "replyTo": "sales@acme.test"}
    assert created.body["status"] == "active" and created.body["channel"] == "email"
    assert set(created.body) == {"id", "orgId", "channel", "config", "status", "createdAt"}
    replaced = await api.post(BASE, json={"channel": "email", "config": SENDER})
    assert replaced.status == 200 and replaced.body["config"] == SENDER
    assert replaced.body["id"] == created.body["id"] and replaced.body["createdAt"] == created.body["createdAt"]
    paused = await api.put(BASE, json={"channel": "email", "config": SENDER, "status": "inactive"})
    assert paused.body["status"] == "inactive"
    kept = await api.put(BASE, json={"channel": "email", "config": {**SENDER, "fromName": "New"}})
    assert kept.body["status"] == "inactive" and kept.body["config"]["fromName"] == "New"
    assert (await api.get(BASE)).body == {"configs": [kept.body]}
    assert await pool.fetchval("SELECT count(*) FROM channel_configs") == 1


async def test_list_is_ordered_by_channel_and_scoped_to_the_org(api, other):
    await api.put(BASE, json={"channel": "email", "config": SENDER})
    await api.put(BASE, json={"channel": "telegram", "config": {"accounts": 2}})
    await api.put(BASE, json={"channel": "voice", "config": {"agent": "default"}})
    await other.put(BASE, json={"channel": "voice", "config": {"agent": "theirs"}})
    configs = (await api.get(BASE)).body["configs"]
    assert [row["channel"] for row in configs] == ["voice", "telegram", "email"]
    assert configs[0]["config"] == {"agent": "default"} and {row["orgId"] for row in configs} == {str(api.org_id)}
    theirs = (await other.get(BASE)).body["configs"]
    assert [(row["channel"], row["config"]) for row in theirs] == [("voice", {"agent": "theirs"})]


async def test_concurrent_upserts_of_one_channel_make_one_row(api, pool):
    replies = await asyncio.gather(*(
        api.put(BASE, json={"channel": "telegram", "config": {"n": n}}) for n in range(10)
    ))
    assert {reply.status for reply in replies} == {200}
    assert len({reply.body["id"] for reply in replies}) == 1
    assert await pool.fetchval("SELECT count(*) FROM channel_configs") == 1


async def test_bad_input(api, pool):
    before = (await api.put(BASE, json={"channel": "email", "config": SENDER})).body
    missing = "Missing required fields: channel, config"
    bad_channel = "Invalid channel. Must be one of: voice, telegram, email"
    email = "config.fromEmail must be a valid email address"
    cases = [
        ({}, missing),
        ({"channel": "email"}, missing),
        ({"config": SENDER}, missing),
        ({"channel": "", "config": SENDER}, missing),
        ({"channel": "email", "config": None}, missing),
        ({"channel": "sms", "config": {}}, bad_channel),
        ({"channel": 1, "config": {}}, bad_channel),
        ({"channel": ["email"], "config": {}}, bad_channel),
        ({"channel": "voice", "config": "x"}, "config must be an object"),
        ({"channel": "telegram", "config": [1]}, "config must be an object"),
        ({"channel": "email", "config": {}}, "config.fromEmail is required"),
        ({"channel": "email", "config": {"fromName": "A"}}, "config.fromEmail is required"),
        ({"channel": "email", "config": {"fromEmail": "not-an-address"}}, email),
        ({"channel": "email", "config": {"fromEmail": "a@b"}}, email),
        ({"channel": "email", "config": {"fromEmail": "a b@acme.test"}}, email),
        ({"channel": "email", "config": {"fromEmail": "a@acme.test\r\nBcc: x@evil.test"}}, email),
        ({"channel": "email", "config": {"fromEmail": "a@acme.test\n"}}, email),
        ({"channel": "email", "config": {"fromEmail": "Acme <a@acme.test>"}}, email),
        ({"channel": "email", "config": {"fromEmail": 5}}, email),
        ({"channel": "email", "config": {"fromEmail": "a\u0000b@acme.test"}}, email),
        ({"channel": "email", "config": {"fromEmail": "x" * 250 + "@acme.test"}}, email),
        ({"channel": "email", "config": {**SENDER, "replyTo": "nope"}}, "config.replyTo must be a valid email address"),
        ({"channel": "email", "config": {**SENDER, "replyTo": ["a@acme.test"]}},
         "config.replyTo must be a valid email address"),
        ({"channel": "email", "config": {**SENDER, "fromName": 3}}, "config.fromName must be a string"),
        ({"channel": "email", "config": {**SENDER, "fromName": "Acme\r\nBcc: x@evil.test"}},
         "config.fromName must not contain line breaks or control characters"),
        ({"channel": "email", "config": {**SENDER, "fromName": "A" * 101}},
         "config.fromName must be at most 100 characters"),
        ({"channel": "email", "config": {**SENDER, "bcc": "x@evil.test", "apiKey": "k"}},
         "Unknown email config field: apiKey, bcc. Allowed: fromEmail, fromName, replyTo"),
        ({"channel": "email", "config": SENDER, "status": "paused"}, "Invalid status. Must be one of: active, inactive"),
        ({"channel": "voice", "config": {}, "status": 1}, "Invalid status. Must be one of: active, inactive"),
    ]
    for method in ("PUT", "POST"):
        for body, message in cases:
            reply = await api.call(method, BASE, json=body)
            assert reply.status == 400 and reply.body == {"error": message}, (method, body, reply.body)
        for raw, message in [(b"{", "Invalid JSON body"), (b'"email"', "Request body must be a JSON object"),
                             (b"", "Request body must be a JSON object")]:
            reply = await api.call(method, BASE, raw=raw)
            assert reply.status == 400 and reply.body == {"error": message}, (method, raw, reply.body)
    assert (await api.get(BASE + "?channel=voice")).body == {"configs": [before]}
    assert await pool.fetchval("SELECT count(*) FROM channel_configs") == 1
