"""A suppression and a batch of attempts in two transactions at once: either the attempt committed before the
suppression (the send was decided first), or it is never written and the lead ends skipped."""
from __future__ import annotations

import asyncio
import datetime

from outreach.storage import db, runs, suppressions
from tests.factories import insert_campaign, insert_lead, insert_row

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


async def campaign_with_leads(pool, org_id, count: int):
    campaign = await insert_campaign(pool, org_id, status="active", channels=["email"])
    leads = [await insert_lead(pool, org_id, email=f"lead{i}@example.com") for i in range(count)]
    for lead in leads:
        await insert_row(pool, "campaign_leads", campaign_id=campaign["id"], lead_id=lead["id"], org_id=org_id)
    return campaign, leads


async def write_attempt(pool, campaign, lead) -> str:
    async with db.transaction(pool) as conn:
        verdicts = await runs.start_attempts(conn, campaign["id"], campaign["org_id"], "enterprise",
                                             [(lead["id"], "email", f"k:{lead['id']}", 0)])
    return verdicts[(lead["id"], "email")]


async def suppress_and_look(pool, org_id, address: str) -> int:
    """Suppress the address, then (still in its transaction) count the attempts made to it: those committed
    before the suppression."""
    async with db.transaction(pool) as conn:
        await suppressions.add_entries(conn, org_id, [("email", address)], "unsubscribe")
        return await conn.fetchval("SELECT count(*) FROM attempts a JOIN leads l ON l.id = a.lead_id "
                                   "WHERE l.email = $1", address)


async def test_a_suppression_racing_a_batch_never_lets_a_send_follow_it(api, pool):
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", api.org_id)
    campaign, leads = await campaign_with_leads(pool, api.org_id, 40)
    races = []
    for index, lead in enumerate(leads):  # alternate who starts first, so both orders are exercised
        pair = [write_attempt(pool, campaign, lead), suppress_and_look(pool, api.org_id, lead["email"])]
        races.append(asyncio.gather(*(pair if index % 2 else reversed(pair))))
    outcomes = await asyncio.gather(*races)
    sent_first = blocked = 0
    for index, (lead, result) in enumerate(zip(leads, outcomes)):
        verdict, seen = result if index % 2 else reversed(result)
        attempts = await pool.fetchval("SELECT count(*) FROM attempts WHERE lead_id = $1", lead["id"])
        state = await pool.fetchval("SELECT state::text FROM campaign_leads WHERE lead_id = $1", lead["id"])
        assert attempts == seen, f"{lead['email']}: an attempt was written after the suppression committed"
        if verdict == "go":
            assert attempts == 1
            sent_first += 1
        else:
            assert (verdict, attempts, state) == (runs.RELEASED, 0, "skipped")
            blocked += 1
    assert sent_first + blocked == len(leads) and sent_first and blocked  # both orders happened


async def test_a_lead_suppressed_after_its_claim_is_not_attempted(api, pool):
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", api.org_id)
    campaign, (ann, bob) = await campaign_with_leads(pool, api.org_id, 2)
    async with db.transaction(pool) as conn:
        claimed = await runs.claim_leads(conn, campaign["id"], runs.FIRST_CURSOR, 10, NOW)
    assert {row["id"] for row in claimed} == {ann["id"], bob["id"]}
    async with db.transaction(pool) as conn:
        await suppressions.add_entries(conn, api.org_id, [("email", "lead0@example.com")], "manual")
    jobs = [(lead["id"], "email", f"k:{lead['id']}", 0) for lead in (ann, bob)]
    async with db.transaction(pool) as conn:
        verdicts = await runs.start_attempts(conn, campaign["id"], api.org_id, "enterprise", jobs)
    assert verdicts == {(ann["id"], "email"): runs.RELEASED, (bob["id"], "email"): "go"}
    rows = await pool.fetch("SELECT lead_id, state::text, error FROM campaign_leads ORDER BY lead_id")
    assert {row["lead_id"]: (row["state"], row["error"]) for row in rows}[ann["id"]] == (
        "skipped", "Lead is on the do-not-contact list")
    assert [row["lead_id"] for row in await pool.fetch("SELECT lead_id FROM attempts")] == [bob["id"]]
