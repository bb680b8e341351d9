"""Analytics over a small known data set in two organizations: exact numbers, and no leaks between them."""
from __future__ import annotations

import datetime

from outreach.http import wire
from tests.factories import insert_call, insert_campaign, insert_lead, insert_message

BASE = "/api/dashboard/analytics"


def today_start() -> datetime.datetime:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def at(days_ago: int, hours: float) -> datetime.datetime:
    return today_start() - datetime.timedelta(days=days_ago) + datetime.timedelta(hours=hours)


def day(days_ago: int) -> str:
    return (today_start() - datetime.timedelta(days=days_ago)).date().isoformat()


def chart(counts: dict[int, tuple[int, int, int]]) -> list[dict]:
    return [dict(zip(("day", "voice", "telegram", "email"), (day(back), *counts.get(back, (0, 0, 0)))))
            for back in range(6, -1, -1)]


def activity(row: dict, channel: str, action: str, name: str, phone: str | None, link: str) -> dict:
    time = row["started_at"] if link == "call" else row["created_at"]
    return {"id": str(row["id"]), "channel": channel, "action": action, "leadName": name, "leadPhone": phone,
            "time": wire.format_time(time), "linkType": link}


async def seed_other(pool, org_id) -> dict:
    lead = await insert_lead(pool, org_id, first_name="Secret", last_name="Person", phone="+19990000000",
                             status="converted")
    campaign = await insert_campaign(pool, org_id, name="Theirs", channels=["voice", "telegram"], status="active")
    link = {"lead_id": lead["id"], "campaign_id": campaign["id"]}
    rows = {"lead": lead, "campaign": campaign}
    rows["b1"] = await insert_call(pool, org_id, **link, duration=10, started_at=at(0, 2))
    rows["b2"] = await insert_call(pool, org_id, **link, duration=21, started_at=at(0, 3))
    rows["b3"] = await insert_message(pool, org_id, lead["id"], campaign_id=campaign["id"], status="delivered",
                                      created_at=at(0, 4))
    rows["b4"] = await insert_message(pool, org_id, lead["id"], campaign_id=campaign["id"], channel="telegram",
                                      created_at=at(0, 5))
    return rows


async def seed_leads_and_campaigns(pool, org_id) -> dict:
    rows = {
        "L1": await insert_lead(pool, org_id, first_name="Ivan", last_name="Petrenko", phone="+380501234567",
                                status="contacted"),
        "L2": await insert_lead(pool, org_id, first_name=" Olga ", email="olga@example.com"),
        "L3": await insert_lead(pool, org_id, phone="+380600000000"),
        "L4": await insert_lead(pool, org_id, telegram_username="quiet", status="qualified"),
        "C_old": await insert_campaign(pool, org_id, name="Old", created_at=at(20, 0)),
        "C1": await insert_campaign(pool, org_id, name="Q1", channels=["voice", "email"], status="active",
                                    created_at=at(10, 0)),
        "C2": await insert_campaign(pool, org_id, name="Q2", status="completed", created_at=at(9, 0)),
    }
    for index in range(1, 9):
        rows[f"F{index}"] = await insert_campaign(pool, org_id, name=f"F{index}", created_at=at(9 - index, 0))
    return rows


async def seed_calls(pool, org_id, rows: dict, stranger) -> None:
    c1, c2, l1, l2 = rows["C1"]["id"], rows["C2"]["id"], rows["L1"]["id"], rows["L2"]["id"]
    rows["k1"] = await insert_call(pool, org_id, campaign_id=c1, lead_id=l1, duration=100, started_at=at(1, 10))
    rows["k2"] = await insert_call(pool, org_id, campaign_id=c1, lead_id=l1, status="no_answer",
                                   to_number="+380000000000", started_at=at(1, 11))
    rows["k3"] = await insert_call(pool, org_id, campaign_id=c1, lead_id=l2, duration=51, to_number="+380670000002",
                                   started_at=at(3, 10))
    rows["k4"] = await insert_call(pool, org_id, campaign_id=c2, lead_id=l1, duration=30, started_at=at(6, 0))
    rows["k5"] = await insert_call(pool, org_id, campaign_id=c2, lead_id=l1, duration=21, started_at=at(6, 11))
    # A lead id of another organization must not lend this call its name.
    rows["k6"] = await insert_call(pool, org_id, lead_id=stranger["id"], status="busy", to_number="+15550001111",
                                   started_at=at(0, 0.5))
    rows["k7"] = await insert_call(pool, org_id, lead_id=rows["L3"]["id"], status="failed",
                                   started_at=at(6, 0) - datetime.timedelta(seconds=1))


async def seed_messages(pool, org_id, rows: dict) -> None:
    l1, l2, l3, l4 = (rows[key]["id"] for key in ("L1", "L2", "L3", "L4"))
    c1, c2 = rows["C1"]["id"], rows["C2"]["id"]
    rows["m1"] = await insert_message(pool, org_id, l1, campaign_id=c1, created_at=at(1, 12))
    rows["m2"] = await insert_message(pool, org_id, l3, campaign_id=c1, status="failed", created_at=at(2, 10))
    rows["m3"] = await insert_message(pool, org_id, l1, campaign_id=c2, channel="telegram", status="replied",
                                      created_at=at(6, 12))
    rows["m4"] = await insert_message(pool, org_id, l2, direction="inbound", status="replied", created_at=at(0, 1))
    rows["m5"] = await insert_message(pool, org_id, l2, channel="telegram", direction="inbound", status="delivered",
                                      created_at=at(2, 11))
    rows["m6"] = await insert_message(pool, org_id, l1, channel="telegram", status="failed", created_at=at(3, 11))
    rows["m7"] = await insert_message(pool, org_id, l1, channel="telegram", status="read", created_at=at(4, 10))
    rows["m8"] = await insert_message(pool, org_id, l1, channel="voice", created_at=at(4, 11))
    rows["m10"] = await insert_message(pool, org_id, l3, status="read", created_at=at(5, 10))
    for lead in (l1, l2, l3):
        await insert_message(pool, org_id, lead, campaign_id=rows["C_old"]["id"], created_at=at(20, 1))
    for hour in range(4):
        await insert_message(pool, org_id, l4, channel="telegram", created_at=at(12, hour))


def campaign_item(row: dict, contacts: int, rate: int) -> dict:
    return {"id": str(row["id"]), "name": row["name"], "channels": row["channels"], "status": row["status"],
            "contactsReached": contacts, "responseRate": rate}


async def test_exact_numbers_for_two_organizations(api, other, pool):
    theirs = await seed_other(pool, other.org_id)
    rows = await seed_leads_and_campaigns(pool, api.org_id)
    await seed_calls(pool, api.org_id, rows, theirs["lead"])
    await seed_messages(pool, api.org_id, rows)

    reply = await api.get(BASE)
    assert reply.status == 200
    body = reply.body
    assert body["voice"] == {"total": 7, "avgDuration": 51, "completionRate": 57, "byStatus": [
        {"status": "completed", "count": 4}, {"status": "failed", "count": 1},
        {"status": "no_answer", "count": 1}, {"status": "busy", "count": 1}]}
    assert body["telegram"] == {"total": 8, "deliveredRate": 38, "replyRate": 13, "byStatus": [
        {"channel": "telegram", "status": "sent", "count": 4},
        {"channel": "telegram", "status": "delivered", "count": 1},
        {"channel": "telegram", "status": "read", "count": 1},
        {"channel": "telegram", "status": "replied", "count": 1},
        {"channel": "telegram", "status": "failed", "count": 1}]}
    assert body["email"] == {"total": 7, "openRate": 29, "replyRate": 14, "byStatus": [
        {"channel": "email", "status": "sent", "count": 4}, {"channel": "email", "status": "read", "count": 1},
        {"channel": "email", "status": "replied", "count": 1}, {"channel": "email", "status": "failed", "count": 1}]}
    assert body["activityChart"] == chart({6: (2, 1, 0), 5: (0, 0, 1), 4: (0, 1, 0), 3: (1, 1, 0), 2: (0, 1, 1),
                                           1: (2, 0, 1), 0: (1, 0, 1)})
    # C1 reached L1 by call and email, L2 and L3 once: 3 leads, 2 of them answered a call. C2 reached L1 only,
    # who answered twice: 100, not 300. The old campaign is not among the 10 newest. Ties: newest first.
    assert body["topCampaigns"] == [campaign_item(rows["C1"], 3, 67), campaign_item(rows["C2"], 1, 100),
                                    campaign_item(rows["F8"], 0, 0), campaign_item(rows["F7"], 0, 0),
                                    campaign_item(rows["F6"], 0, 0)]
    assert body["leadStatuses"] == {"total": 4, "breakdown": [
        {"status": "new", "count": 2}, {"status": "contacted", "count": 1}, {"status": "qualified", "count": 1}]}
    ivan = ("Ivan Petrenko", "+380501234567")
    assert body["recentActivity"] == [
        activity(rows["m4"], "email", "Received email", "Olga", None, "message"),
        activity(rows["k6"], "voice", "Call busy", "+15550001111", "+15550001111", "call"),
        activity(rows["m1"], "email", "Sent email", *ivan, "message"),
        activity(rows["k2"], "voice", "Call no_answer", *ivan, "call"),
        activity(rows["k1"], "voice", "Called", *ivan, "call"),
        activity(rows["m5"], "telegram", "Received message", "Olga", None, "message"),
        activity(rows["m2"], "email", "Email failed", "Unknown", "+380600000000", "message"),
        activity(rows["m6"], "telegram", "Message failed", *ivan, "message"),
        activity(rows["k3"], "voice", "Called", "Olga", "+380670000002", "call"),
        activity(rows["m8"], "voice", "Called", *ivan, "message"),
    ]
    assert set(body) == {"voice", "telegram", "email", "activityChart", "topCampaigns", "leadStatuses",
                         "recentActivity"}

    theirs_body = (await other.get(BASE)).body
    secret = ("Secret Person", "+19990000000")
    assert theirs_body == {
        "voice": {"total": 2, "avgDuration": 16, "completionRate": 100,
                  "byStatus": [{"status": "completed", "count": 2}]},
        "telegram": {"total": 1, "deliveredRate": 0, "replyRate": 0,
                     "byStatus": [{"channel": "telegram", "status": "sent", "count": 1}]},
        "email": {"total": 1, "openRate": 0, "replyRate": 0,
                  "byStatus": [{"channel": "email", "status": "delivered", "count": 1}]},
        "activityChart": chart({0: (2, 1, 1)}),
        "topCampaigns": [campaign_item(theirs["campaign"], 1, 100)],
        "leadStatuses": {"total": 1, "breakdown": [{"status": "converted", "count": 1}]},
        "recentActivity": [
            activity(theirs["b4"], "telegram", "Sent message", *secret, "message"),
            activity(theirs["b3"], "email", "Sent email", *secret, "message"),
            activity(theirs["b2"], "voice", "Called", *secret, "call"),
            activity(theirs["b1"], "voice", "Called", *secret, "call"),
        ],
    }


async def test_an_empty_organization_gets_zeros_and_seven_days(api):
    reply = await api.get(BASE)
    assert reply.status == 200
    assert reply.body == {
        "voice": {"total": 0, "avgDuration": 0, "completionRate": 0, "byStatus": []},
        "telegram": {"total": 0, "deliveredRate": 0, "replyRate": 0, "byStatus": []},
        "email": {"total": 0, "openRate": 0, "replyRate": 0, "byStatus": []},
        "activityChart": chart({}),
        "topCampaigns": [],
        "leadStatuses": {"total": 0, "breakdown": []},
        "recentActivity": [],
    }


async def test_bad_input(api, http, pool):
    await insert_campaign(pool, api.org_id)
    reply = await api.get(BASE + "?days=abc&orgId=x&page=-1")
    assert reply.status == 200 and reply.body["topCampaigns"][0]["contactsReached"] == 0
    for method in ("POST", "PUT", "DELETE"):
        reply = await api.call(method, BASE, json={})
        assert reply.status == 405 and set(reply.body) == {"error"}
    async with http.get(BASE) as response:
        assert response.status == 401 and await response.json() == {"error": "Unauthorized"}
    assert await pool.fetchval("SELECT count(*) FROM campaigns") == 1
