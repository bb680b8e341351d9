"""The org's Telegram accounts over HTTP and PostgreSQL."""
from __future__ import annotations

import datetime
import zoneinfo

import orjson

from tests.factories import insert_telegram_account

BASE = "/api/dashboard/telegram/accounts"
T0 = datetime.datetime(2026, 3, 24, 10, 0, tzinfo=datetime.timezone.utc)
ACCOUNT_KEYS = {"id", "phone", "username", "displayName", "status", "dailyMessageCount", "maxDailyMessages",
                "lastMessageAt", "createdAt"}


def today_in(zone: str) -> datetime.date:
    return datetime.datetime.now(zoneinfo.ZoneInfo(zone)).date()


async def test_lists_assigned_accounts_newest_first_without_session(api, other, pool):
    old = await insert_telegram_account(pool, api.org_id, phone="+380500000001", created_at=T0, username="sales1",
                                        display_name="Sales One", status="active", daily_message_count=3,
                                        daily_count_day=today_in("UTC"), max_daily_messages=20,
                                        last_message_at=T0 + datetime.timedelta(hours=1))
    new = await insert_telegram_account(pool, api.org_id, phone="+380500000002",
                                        created_at=T0 + datetime.timedelta(days=1))
    await insert_telegram_account(pool, other.org_id, phone="+380500000003")
    await insert_telegram_account(pool, None, phone="+380500000004")
    reply = await api.get(BASE)
    assert reply.status == 200 and set(reply.body) == {"accounts"}
    assert [account["id"] for account in reply.body["accounts"]] == [str(new["id"]), str(old["id"])]
    assert all(set(account) == ACCOUNT_KEYS for account in reply.body["accounts"])
    assert reply.body["accounts"][1] == {
        "id": str(old["id"]), "phone": "+380500000001", "username": "sales1", "displayName": "Sales One",
        "status": "active", "dailyMessageCount": 3, "maxDailyMessages": 20,
        "lastMessageAt": "2026-03-24T11:00:00.000Z", "createdAt": "2026-03-24T10:00:00.000Z",
    }
    assert reply.body["accounts"][0]["status"] == "warming_up"
    assert reply.body["accounts"][0]["maxDailyMessages"] == 10 and reply.body["accounts"][0]["dailyMessageCount"] == 0
    assert b"secret-session" not in orjson.dumps(reply.body)
    assert [account["phone"] for account in (await other.get(BASE)).body["accounts"]] == ["+380500000003"]


async def test_a_count_from_an_earlier_day_reads_as_zero(api, pool):
    zone = "Pacific/Kiritimati"  # UTC+14: its day differs from the UTC day for ten hours of every day
    rows = {
        "today_utc": ("UTC", today_in("UTC"), 4),
        "yesterday_utc": ("UTC", today_in("UTC") - datetime.timedelta(days=1), 0),
        "never": ("UTC", None, 0),
        "today_local": (zone, today_in(zone), 4),
        "yesterday_local": (zone, today_in(zone) - datetime.timedelta(days=1), 0),
        "unknown_zone": ("Mars/Olympus", today_in("UTC"), 4),
    }
    for username, (day_timezone, day, _) in rows.items():
        await insert_telegram_account(pool, api.org_id, username=username, day_timezone=day_timezone,
                                      daily_count_day=day, daily_message_count=4)
    accounts = (await api.get(BASE)).body["accounts"]
    counts = {account["username"]: account["dailyMessageCount"] for account in accounts}
    assert counts == {username: expected for username, (_, _, expected) in rows.items()}
    stored = await pool.fetch("SELECT daily_message_count FROM telegram_accounts")
    assert {row["daily_message_count"] for row in stored} == {4}


async def test_bad_input(api, http, pool):
    await insert_telegram_account(pool, api.org_id)
    assert (await api.get(BASE + "?page=abc&assignedOrgId=x")).body["accounts"][0]["status"] == "warming_up"
    for method in ("POST", "PUT", "DELETE"):
        reply = await api.call(method, BASE, json={"phone": "+1"})
        assert reply.status == 405 and set(reply.body) == {"error"}
    async with http.get(BASE) as response:
        assert response.status == 401 and await response.json() == {"error": "Unauthorized"}
    assert await pool.fetchval("SELECT count(*) FROM telegram_accounts") == 1
