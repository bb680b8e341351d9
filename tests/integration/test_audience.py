"""Who a campaign may contact, over real PostgreSQL, Redis and Ray: leads outside its audience and suppressed
leads end `skipped` with the reason and are never attempted; an unsubscribe during a run stops every later
contact of that address, in this campaign and the next."""
from __future__ import annotations

import uuid

from outreach.runtime import optout
from tests.integration.test_execution import BASE, SLOW, setup_campaign, wait_until
from tests.integration.test_runner import TEMPLATES as TEMPLATES

SECRET = "test-secret"
ALL_SENT = {"sandbox": {"outcomes": {"email": {"sent": 1.0}}}}  # the sandbox bounces some by default


async def states(pool, campaign_id) -> dict:
    rows = await pool.fetch(
        """SELECT l.email, cl.state::text, cl.error FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id
           WHERE cl.campaign_id = $1""", campaign_id)
    return {row["email"]: (row["state"], row["error"]) for row in rows}


async def attempted(pool) -> set:
    return {row["email"] for row in await pool.fetch(
        "SELECT DISTINCT l.email FROM attempts a JOIN leads l ON l.id = a.lead_id")}


async def test_converted_rejected_and_suppressed_leads_are_skipped_with_the_reason(ray_api, pool):
    leads = [{"firstName": name, "email": f"{name}@example.com"} for name in
             ("new", "contacted", "converted", "rejected", "qualified", "optedout")]
    leads.append({"firstName": "byphone", "email": "byphone@example.com", "phone": "+1 555 010 0199"})
    campaign_id = await setup_campaign(ray_api, pool, 0, leads=leads, settings=ALL_SENT)
    for status in ("contacted", "converted", "rejected", "qualified"):
        await pool.execute("UPDATE leads SET status = $1::lead_status WHERE email = $2", status, f"{status}@example.com")
    await ray_api.post("/api/dashboard/suppressions", json={"entries": [
        {"type": "email", "value": "OptedOut@example.com"}, {"type": "phone", "value": "+15550100199"}]})
    reply = await ray_api.post(f"{BASE}/{campaign_id}/execute")
    assert reply.status == 200, reply.body
    outside = "outside the campaign's audience"
    assert await states(pool, campaign_id) == {
        "new@example.com": ("sent", None), "contacted@example.com": ("sent", None),
        "converted@example.com": ("skipped", f"Lead is converted, {outside}"),
        "rejected@example.com": ("skipped", "Lead is rejected"),
        "qualified@example.com": ("skipped", f"Lead is qualified, {outside}"),
        "optedout@example.com": ("skipped", "Lead is on the do-not-contact list"),
        "byphone@example.com": ("skipped", "Lead is on the do-not-contact list"),
    }
    assert await attempted(pool) == {"new@example.com", "contacted@example.com"}
    # A campaign for qualified and converted leads reaches them, and still never a rejected or suppressed one.
    second = (await ray_api.post(BASE, json={"name": "customers", "channels": ["email"], "channelPriority": ["email"],
                                             "settings": {**TEMPLATES, **ALL_SENT,
                                                          "audience": {"statuses": ["qualified",
                                                                                    "converted"]}}})).body["id"]
    # The API refuses `rejected` in an audience; one stored before it did still never reaches a rejected lead.
    await pool.execute("""UPDATE campaigns SET settings = jsonb_set(settings, '{audience,statuses}',
                                                                    '["qualified", "converted", "rejected"]')
                          WHERE id = $1""", uuid.UUID(second))
    ids = [str(row["id"]) for row in await pool.fetch("SELECT id FROM leads WHERE org_id = $1", ray_api.org_id)]
    await ray_api.post(f"{BASE}/{second}/leads", json={"leadIds": ids})
    assert (await ray_api.post(f"{BASE}/{second}/execute")).status == 200
    assert {email for email, (state, _) in (await states(pool, second)).items() if state == "sent"} == {
        "qualified@example.com", "converted@example.com"}


async def test_an_unsubscribe_during_a_run_stops_every_later_contact(ray_api, ray_http, pool):
    campaign_id = await setup_campaign(ray_api, pool, 300, settings=SLOW)
    await ray_api.post(f"{BASE}/{campaign_id}/execute?wait=false")

    async def some_sent():
        return await pool.fetchval("SELECT count(*) FROM attempts WHERE outcome IS NOT NULL") >= 20

    await wait_until(some_sent)
    # Every lead not attempted yet clicks its link now (the mailbox's one-click POST).
    waiting = [row["email"] for row in await pool.fetch(
        """SELECT l.email FROM leads l WHERE l.org_id = $1
           AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.lead_id = l.id) ORDER BY l.id DESC LIMIT 40""",
        ray_api.org_id)]
    assert len(waiting) == 40
    for email in waiting:
        token = optout.unsubscribe_token(SECRET, ray_api.org_id, email)
        async with ray_http.post(f"/u/{token}", data="List-Unsubscribe=One-Click") as response:
            assert response.status == 200
    seen_at_click = await attempted(pool) & set(waiting)  # committed before the last suppression

    async def finished():
        return await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"

    await wait_until(finished)
    assert await attempted(pool) & set(waiting) == seen_at_click  # nothing after the click
    skipped = {email for email, (state, error) in (await states(pool, campaign_id)).items()
               if (state, error) == ("skipped", "Lead is on the do-not-contact list")}
    assert skipped == set(waiting) - seen_at_click and len(skipped) >= 30
    # ...nor in any other campaign, on any channel.
    second = (await ray_api.post(BASE, json={"name": "again", "channels": ["email", "telegram"],
                                             "channelPriority": ["telegram", "email"],
                                             "settings": TEMPLATES})).body["id"]
    ids = [str(row["id"]) for row in await pool.fetch("SELECT id FROM leads WHERE email = ANY($1)", waiting)]
    await ray_api.post(f"{BASE}/{second}/leads", json={"leadIds": ids})
    assert (await ray_api.post(f"{BASE}/{second}/execute")).status == 200
    assert {state for state, _ in (await states(pool, second)).values()} == {"skipped"}
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1", second) == 0


async def test_the_runtime_tells_an_account_actor_on_ray_to_listen(ray_api, ray_settings, pool):
    """The plumbing behind telegram_inbox.keep_listening: the account's actor answers on Ray. A sandbox account
    has nothing to read, so it says it is not listening (the Telethon side is tested in test_telegram_replies)."""
    from outreach.actors import remote
    from tests.conftest import TEST_RUNNER_OPTIONS

    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (phone, session, status, assigned_org_id) "
        "VALUES ('+380500000009', 'sandbox', 'active', $1) RETURNING id", ray_api.org_id)
    runtime = remote.RayRuntime(ray_settings, TEST_RUNNER_OPTIONS)
    assert await runtime.listen_telegram([account]) == [False]


async def test_an_audience_is_checked_on_create_and_update(api):
    """`converted` only when a campaign names it; `rejected` never; an unknown status is a 400 naming it."""
    customers = await api.post(BASE, json={"name": "Customers", "settings": {"audience": {"statuses": ["converted"]}}})
    assert customers.status == 201, customers.body
    for statuses, error in (
            (["new", "rejected"], "settings.audience.statuses cannot include rejected: a rejected lead is never "
                                  "contacted"),
            (["new", "customers"], "settings.audience.statuses: unknown lead status 'customers' (one of: new, "
                                   "contacted, qualified, converted)"),
            ("new", "settings.audience.statuses must be a list of lead statuses")):
        body = {"name": "Bad", "settings": {"audience": {"statuses": statuses}}}
        created = await api.post(BASE, json=body)
        assert (created.status, created.body) == (400, {"error": error})
        updated = await api.patch(f"{BASE}/{customers.body['id']}", json={"settings": body["settings"]})
        assert (updated.status, updated.body) == (400, {"error": error})
    kept = await api.get(f"{BASE}/{customers.body['id']}")
    assert kept.body["settings"]["audience"] == {"statuses": ["converted"]}
