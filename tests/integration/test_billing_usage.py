"""This month's usage and the plan's limits over HTTP and PostgreSQL."""
from __future__ import annotations

import datetime

from tests.factories import insert_usage

BASE = "/api/dashboard/billing/usage"


def this_month() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date().replace(day=1)


async def set_plan(pool, org_id, plan: str) -> None:
    await pool.execute("UPDATE organizations SET plan = $2 WHERE id = $1", org_id, plan)


async def test_zero_usage_on_the_free_plan_by_default(api):
    reply = await api.get(BASE)
    assert reply.status == 200
    assert reply.body == {"minutes": 0, "telegramMessages": 0, "emails": 0, "plan": "free",
                          "limits": {"minutes": 0, "telegram": 0, "emails": 0}}


async def test_reads_this_months_row_of_the_org_only(api, other, pool):
    await set_plan(pool, api.org_id, "starter")
    await insert_usage(pool, api.org_id, this_month(), minutes=37, telegram=12, emails=140)
    await insert_usage(pool, api.org_id, (this_month() - datetime.timedelta(days=1)).replace(day=1),
                       minutes=900, telegram=900, emails=900)
    await insert_usage(pool, other.org_id, this_month(), minutes=5, telegram=6, emails=7)
    reply = await api.get(BASE)
    assert reply.body == {"minutes": 37, "telegramMessages": 12, "emails": 140, "plan": "starter",
                          "limits": {"minutes": 500, "telegram": 100, "emails": 500}}
    theirs = (await other.get(BASE)).body
    assert (theirs["minutes"], theirs["telegramMessages"], theirs["emails"], theirs["plan"]) == (5, 6, 7, "free")


async def test_limits_follow_the_plan(api, pool):
    expected = {"growth": (2000, 500, 2000), "enterprise": (999999, 999999, 999999), "starter": (500, 100, 500)}
    for plan, (minutes, telegram, emails) in expected.items():
        await set_plan(pool, api.org_id, plan)
        body = (await api.get(BASE)).body
        assert body["plan"] == plan
        assert body["limits"] == {"minutes": minutes, "telegram": telegram, "emails": emails}


async def test_bad_input(api, http, pool):
    await insert_usage(pool, api.org_id, this_month(), minutes=1)
    assert (await api.get(BASE + "?month=abc&orgId=x")).body["minutes"] == 1
    for method in ("POST", "PUT", "DELETE"):
        reply = await api.call(method, BASE, json={"minutes": 0})
        assert reply.status == 405 and set(reply.body) == {"error"}
    async with http.get(BASE) as response:
        assert response.status == 401 and await response.json() == {"error": "Unauthorized"}
    assert await pool.fetchval("SELECT minutes FROM usage WHERE org_id = $1", api.org_id) == 1
