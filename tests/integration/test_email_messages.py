"""The email message log over HTTP and PostgreSQL."""
from __future__ import annotations

import datetime
import uuid

from tests.factories import insert_lead, insert_message

BASE = "/api/dashboard/email/messages"
T0 = datetime.datetime(2026, 3, 24, 10, 0, tzinfo=datetime.timezone.utc)
ITEM_KEYS = {"id", "leadId", "direction", "content", "status", "metadata", "parentId", "createdAt"}


def at(minutes: int) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


async def test_lists_email_of_both_directions_newest_first(api, pool):
    lead = await insert_lead(pool, api.org_id, email="ivan@example.com")
    sent = await insert_message(pool, api.org_id, lead["id"], content="Hello", created_at=at(0),
                                metadata={"subject": "Hi", "toEmail": "ivan@example.com", "resendId": "re_1"})
    reply_in = await insert_message(pool, api.org_id, lead["id"], direction="inbound", status="replied",
                                    content="Thanks", created_at=at(5),
                                    metadata={"subject": "Re: Hi", "fromEmail": "ivan@example.com", "html": "<p>"})
    answer = await insert_message(pool, api.org_id, lead["id"], created_at=at(6), parent_id=reply_in["id"],
                                  metadata={"subject": "Re: Hi", "toEmail": "ivan@example.com", "autoReply": True})
    await insert_message(pool, api.org_id, lead["id"], channel="telegram", created_at=at(7))
    await insert_message(pool, api.org_id, lead["id"], channel="voice", created_at=at(8))
    reply = await api.get(BASE)
    assert reply.status == 200
    assert {key: reply.body[key] for key in ("total", "page", "limit")} == {"total": 3, "page": 1, "limit": 50}
    assert set(reply.body) == {"messages", "total", "page", "limit"}
    items = reply.body["messages"]
    assert [item["id"] for item in items] == [str(answer["id"]), str(reply_in["id"]), str(sent["id"])]
    assert all(set(item) == ITEM_KEYS for item in items)
    assert items[0]["parentId"] == str(reply_in["id"]) and items[2]["parentId"] is None
    assert items[2] == {
        "id": str(sent["id"]), "leadId": str(lead["id"]), "direction": "outbound", "content": "Hello",
        "status": "sent", "parentId": None, "createdAt": "2026-03-24T10:00:00.000Z",
        "metadata": {"subject": "Hi", "toEmail": "ivan@example.com", "resendId": "re_1", "to": "ivan@example.com"},
    }
    assert items[1]["metadata"] == {"subject": "Re: Hi", "fromEmail": "ivan@example.com", "html": "<p>"}
    stored = await pool.fetchval("SELECT metadata FROM messages WHERE id = $1", sent["id"])
    assert "to" not in stored


async def test_pages_and_filters_by_lead(api, pool):
    first = await insert_lead(pool, api.org_id, email="a@example.com")
    second = await insert_lead(pool, api.org_id, email="b@example.com")
    for minute in range(3):
        await insert_message(pool, api.org_id, first["id"], created_at=at(minute))
    only = await insert_message(pool, api.org_id, second["id"], created_at=at(10))
    page = await api.get(BASE + "?page=2&limit=3")
    assert (page.body["total"], page.body["page"], page.body["limit"]) == (4, 2, 3)
    assert len(page.body["messages"]) == 1
    filtered = await api.get(f"{BASE}?leadId={second['id']}")
    assert filtered.body["total"] == 1 and [item["id"] for item in filtered.body["messages"]] == [str(only["id"])]
    assert (await api.get(f"{BASE}?leadId={uuid.uuid4()}")).body == {"messages": [], "total": 0, "page": 1,
                                                                      "limit": 50}
    assert (await api.get(BASE + "?leadId=")).body["total"] == 4
    assert (await api.get(BASE + "?limit=101")).body["limit"] == 100


async def test_other_orgs_messages_never_appear(api, other, pool):
    theirs = await insert_lead(pool, other.org_id, email="x@globex.com")
    await insert_message(pool, other.org_id, theirs["id"], content="secret")
    assert (await api.get(BASE)).body["total"] == 0
    assert (await api.get(f"{BASE}?leadId={theirs['id']}")).body["messages"] == []
    assert (await other.get(BASE)).body["total"] == 1


async def test_bad_input(api, pool):
    lead = await insert_lead(pool, api.org_id, email="a@example.com")
    await insert_message(pool, api.org_id, lead["id"])
    cases = [
        (BASE + "?page=abc", "page must be a whole number"),
        (BASE + "?page=1.5", "page must be a whole number"),
        (BASE + "?limit=x", "limit must be a whole number"),
        (BASE + "?leadId=not-a-uuid", "leadId must be a UUID"),
        (BASE + "?leadId=" + "1" * 36, "leadId must be a UUID"),
        (BASE + f"?leadId={lead['id']}x", "leadId must be a UUID"),
    ]
    for target, message in cases:
        reply = await api.get(target)
        assert (reply.status, reply.body) == (400, {"error": message}), target
    assert (await api.post(BASE, json={})).status == 405
    assert (await api.get(BASE)).body["total"] == 1
