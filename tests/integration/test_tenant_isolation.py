"""Tenant isolation matrix (DESIGN.md 3.1): organization B aims every dashboard route at organization A.

A and B each get a full data set (campaigns with leads assigned, script, voice config, channel config,
API keys, phone number, call log, email message, Telegram account, usage row, onboarding state, an
attempt). Then, one test per line of the tables below:

- ID_CASES: B sends A's id (in the path, in `?id=`/`?leadId=`, or inside the body). B must get the
  status and body of the table, exactly what it gets for ids that exist nowhere (no existence oracle),
  and A's rows in PostgreSQL must be byte-identical afterwards. A then sends the same request as a
  control (`owner`), which proves the route and the id are real, so a 404 is never vacuous.
- NO_ID_WRITES: B's creates and per-org upserts (voice, channels, onboarding, CSV import with A's
  contacts) must land on B only: A's rows byte-identical.
- LIST_CASES: B's answer holds exactly B's own data, and none of A's ids or marker values.

Paths are below /api/dashboard; `{a.x}` / `{b.x}` name the seeded ids of A and B (see `seed`).
A new route is one line here; test_every_dashboard_route_has_a_case fails until it has one.
"""
from __future__ import annotations

import datetime
import json
import re
import types
import uuid
from typing import Any, Callable, NamedTuple

import aiohttp
import pytest

from outreach.storage import api_keys
from tests.factories import (insert_call, prove_sender, insert_message, insert_number, insert_row, insert_telegram_account,
                             insert_usage)

DASH = "/api/dashboard"
MARK_A, MARK_B = "aardvark", "bluejay"  # every text value of a tenant carries its mark
NOT_FOUND = {"error": "Not found"}
CAMPAIGN_NOT_FOUND = {"error": "Campaign not found"}
TWILIO_NOT_CONFIGURED = "Twilio is not configured. Please add TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."
PROFILES = {  # what differs between A and B besides the mark, so a leak cannot produce B's numbers
    MARK_A: {"digit": 1, "onboarded": False, "usage": (37, 12, 140), "duration": 125,
             "voice": {"selectedVoices": ["olena", "sofia"], "language": "en", "personality": "friendly"}},
    MARK_B: {"digit": 2, "onboarded": True, "usage": (5, 6, 7), "duration": 30,
             "voice": {"selectedVoices": ["taras"], "language": "de", "personality": "casual"}},
}


class Upload(NamedTuple):
    """A multipart CSV body (the `file` field) instead of JSON."""

    text: str


class Case(NamedTuple):
    method: str
    path: str  # below /api/dashboard, with {a.x} / {b.x} placeholders
    body: Any = None  # JSON (strings formatted like the path) or an Upload
    status: int = 404
    reply: Any = NOT_FOUND  # the exact body B must get; None: not checked
    owner: int | None = None  # the status A gets for the same request (control), when it means something

    def __str__(self) -> str:
        body = "" if self.body is None else " " + json.dumps(self.body, separators=(",", ":"))
        return f"{self.method} {self.path}{body}"


class ListCase(NamedTuple):
    path: str
    view: Callable[[Any], Any]  # what of B's reply is compared
    expected: Any  # B's own data, with {b.x} placeholders

    def __str__(self) -> str:
        return f"GET {self.path}"


def unordered(value):
    """Lists sorted at every level: views compare sets of ids, whatever order the route uses."""
    if isinstance(value, dict):
        return {key: unordered(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((unordered(item) for item in value), key=json.dumps)
    return value


def ids(key: str | None, *fields: str) -> Callable[[Any], list]:
    """The ids (or [id, field...] rows) of the items under `key` (None: a bare array)."""
    def view(body):
        items = body if key is None else body[key]
        return [[item["id"], *(item[field] for field in fields)] if fields else item["id"] for item in items]
    return view


def pick(*keys: str) -> Callable[[Any], dict]:
    return lambda body: {key: body[key] for key in keys}


def lead_page(body) -> dict:
    return {"ids": ids("leads")(body), "total": body.get("total", body.get("pagination", {}).get("total"))}


def analytics_view(body) -> dict:
    chart = body["activityChart"]
    return {
        "calls": body["voice"]["total"], "avgDuration": body["voice"]["avgDuration"],
        "emails": body["email"]["total"], "telegram": body["telegram"]["total"],
        "leads": body["leadStatuses"]["total"],
        "campaigns": [[item["id"], item["contactsReached"]] for item in body["topCampaigns"]],
        "activity": [item["id"] for item in body["recentActivity"]],
        "chart": {channel: sum(day[channel] for day in chart) for channel in ("voice", "telegram", "email")},
    }


ID_CASES = [
    # campaigns: path ids
    Case("GET", "/campaigns/{a.campaign}", owner=200),
    Case("PATCH", "/campaigns/{a.campaign}", {"name": "pwned"}, owner=200),
    Case("PATCH", "/campaigns/{a.campaign}", {"status": "paused"}, owner=200),
    Case("PUT", "/campaigns/{a.draft}", {"name": "pwned", "channels": ["email"]}, owner=200),
    Case("DELETE", "/campaigns/{a.draft}", owner=200),
    Case("DELETE", "/campaigns/{a.campaign}", owner=409),
    Case("POST", "/campaigns/{a.draft}/start", owner=200),
    Case("POST", "/campaigns/{a.campaign}/pause", owner=200),
    Case("POST", "/campaigns/{a.draft}/execute", reply=CAMPAIGN_NOT_FOUND, owner=400),  # A: no leads assigned
    Case("POST", "/campaigns/{a.campaign}/execute?wait=false", reply=CAMPAIGN_NOT_FOUND),
    # the websocket feed checks the campaign before the handshake; A's plain GET fails the handshake (400)
    Case("GET", "/campaigns/{a.campaign}/progress", reply=CAMPAIGN_NOT_FOUND, owner=400),
    Case("GET", "/campaigns/{a.campaign}/leads", reply=CAMPAIGN_NOT_FOUND, owner=200),
    Case("POST", "/campaigns/{a.draft}/leads", {"leadIds": ["{b.lead}"]}, reply=CAMPAIGN_NOT_FOUND, owner=400),
    Case("POST", "/campaigns/{a.campaign}/leads", {"leadIds": ["{a.lead}"]}, reply=CAMPAIGN_NOT_FOUND, owner=200),
    Case("DELETE", "/campaigns/{a.campaign}/leads", {"leadIds": ["{a.lead}"]}, reply=CAMPAIGN_NOT_FOUND, owner=200),
    # campaigns: ids inside bodies
    Case("POST", "/campaigns/{b.campaign}/leads", {"leadIds": ["{a.lead}", "{a.lead2}"]}, 400,
         {"error": "No valid leads found to assign"}),
    Case("POST", "/campaigns/{b.campaign}/leads", {"leadIds": ["{b.lead}", "{a.lead}"]}, 200,
         {"success": True, "assigned": 1}),
    Case("DELETE", "/campaigns/{b.campaign}/leads", {"leadIds": ["{a.lead}", "{a.lead2}"]}, 200,
         {"success": True, "removed": 0}),
    Case("POST", "/campaigns", {"name": "x", "scriptId": "{a.script}"}, 400, {"error": "Script not found"}, owner=201),
    Case("PATCH", "/campaigns/{b.draft}", {"scriptId": "{a.script}"}, 400, {"error": "Script not found"}),
    Case("PUT", "/campaigns/{b.draft}", {"scriptId": "{a.script}"}, 400, {"error": "Script not found"}),
    # leads
    Case("GET", "/leads/{a.lead}", owner=200),
    Case("PATCH", "/leads/{a.lead}", {"firstName": "pwned"}, owner=200),
    Case("PUT", "/leads/{a.lead}", {"status": "converted"}, owner=200),
    Case("DELETE", "/leads/{a.lead}", owner=200),
    # scripts
    Case("GET", "/scripts/{a.script}", owner=200),
    Case("PUT", "/scripts/{a.script}", {"name": "pwned"}, owner=200),
    Case("PATCH", "/scripts/{a.script}", {"content": "pwned"}, owner=200),
    Case("DELETE", "/scripts/{a.script}", owner=200),
    # calls
    Case("GET", "/calls/{a.call}", owner=200),
    # numbers
    Case("GET", "/numbers/{a.number}", owner=200),
    Case("PUT", "/numbers/{a.number}", {"label": "pwned"}, owner=200),
    Case("PATCH", "/numbers/{a.number}", {"campaignId": "{b.campaign}"}, owner=400),
    Case("PUT", "/numbers/{b.number}", {"campaignId": "{a.campaign}"}, 400, {"error": "Campaign not found"}),
    Case("PATCH", "/numbers/{b.number}", {"campaignId": "{a.draft}", "label": "x"}, 400,
         {"error": "Campaign not found"}),
    Case("DELETE", "/numbers/{a.number}", owner=503),  # A: Twilio is not configured in this app, nothing released
    # api keys (?id=)
    Case("DELETE", "/settings/api-keys?id={a.key}", reply={"error": "Key not found"}, owner=200),
    Case("DELETE", "/settings/api-keys?id={a.boot_key}", reply={"error": "Key not found"}, owner=200),
    # email messages (?leadId= filter): an empty page, as for a lead that does not exist
    Case("GET", "/email/messages?leadId={a.lead}", None, 200, {"messages": [], "total": 0, "page": 1, "limit": 50},
         owner=200),
    # email send and drafts: another org's lead, campaign or script reads like a missing one (A: no Resend here)
    Case("POST", "/email/send", {"leadId": "{a.lead}", "subject": "x", "body": "y", "toEmail": "one@aardvark.test"},
         400, {"error": "Lead not found"}, owner=503),
    Case("POST", "/email/send", {"leadId": "{b.lead}", "subject": "x", "body": "y", "toEmail": "one@bluejay.test",
                                 "campaignId": "{a.campaign}"}, 400, {"error": "Campaign not found"}),
    Case("POST", "/email/generate", {"type": "initial", "scriptId": "{a.script}"}, 400, {"error": "Script not found"},
         owner=200),  # A: a template draft flagged fallback (no OpenRouter here)
    # the do-not-contact list
    Case("DELETE", "/suppressions/{a.suppression}", reply={"error": "Suppression not found"}, owner=200),
    # proving A's sender address: B has not claimed it (A: already proven by the seed, so proving again is a 200)
    Case("POST", "/channels/email/verify", {"address": "sales@aardvark.test"}, 400,
         {"error": "Save this address in your email settings first"}, owner=200),
]

NO_ID_WRITES = [
    Case("POST", "/campaigns", {"name": "bluejay new"}, 201, None),
    Case("POST", "/leads", {"email": "one@aardvark.test", "phone": "+15551000001"}, 201, None),
    Case("POST", "/leads/import", Upload("email,phone\none@aardvark.test,+15551000001\n"), 200,
         {"success": True, "imported": 1, "total": 1, "skipped": 0, "duplicates": 0, "errors": []}),
    Case("POST", "/scripts", {"name": "bluejay new"}, 201, None),
    Case("POST", "/settings/api-keys", {"name": "bluejay new"}, 201, None),
    Case("PUT", "/channels", {"channel": "email", "config": {"fromEmail": "new@bluejay.test"}}, 200, None),
    Case("POST", "/channels", {"channel": "voice", "config": {"agent": "bluejay"}, "status": "inactive"}, 200, None),
    Case("PUT", "/voice", {"selectedVoices": ["dmytro"], "language": "pl"}, 200, None),
    Case("PATCH", "/voice", {"speed": 1.5, "personality": "assertive"}, 200, None),
    # numbers and voice sync: no Twilio nor voice agent in this app (test_numbers_twilio.py, test_voice_agent_sync.py
    # cover A vs B with them)
    Case("GET", "/numbers/available", None, 503, {"error": TWILIO_NOT_CONFIGURED}),
    Case("POST", "/numbers", {"phoneNumber": "+15550000001", "label": "bluejay new"}, 503,
         {"error": TWILIO_NOT_CONFIGURED}),
    Case("POST", "/voice/sync", None, 503,
         {"error": "Voice agent is not configured. Set VOICE_AGENT_URL and VOICE_AGENT_SECRET."}),
    Case("POST", "/onboarding/complete", None, 200, {"success": True, "onboardingDone": True}),
    # billing: no provider in this app (tests/integration/test_billing_checkout.py and test_liqpay.py cover A vs B)
    Case("POST", "/billing/checkout", {"planId": "starter"}, 503,
         {"error": "Stripe is not configured. Set STRIPE_SECRET_KEY."}),
    Case("POST", "/billing/portal", None, 503, {"error": "Stripe is not configured. Set STRIPE_SECRET_KEY."}),
    Case("POST", "/billing/liqpay", {"planId": "starter"}, 503,
         {"error": "LiqPay is not configured. Set LIQPAY_PUBLIC_KEY and LIQPAY_PRIVATE_KEY."}),
    Case("POST", "/email/test", None, 400, {"error": "No email address found on your account"}),
    Case("POST", "/suppressions", {"type": "email", "value": "optout@aardvark.test"}, 201, None),
    Case("POST", "/suppressions/import", Upload("email\noptout@aardvark.test\none@aardvark.test\n"), 200,
         {"success": True, "imported": 2, "total": 2, "duplicates": 0, "errors": []}),
]

LIST_CASES = [
    ListCase("/campaigns", ids("campaigns", "leadCount"), [["{b.campaign}", 2], ["{b.draft}", 0]]),
    ListCase("/campaigns?status=active", ids("campaigns"), ["{b.campaign}"]),
    ListCase("/campaigns/{b.campaign}", lambda body: body["stats"]["total"], 2),
    ListCase("/campaigns/{b.campaign}/leads", lead_page, {"ids": ["{b.lead}", "{b.lead2}"], "total": 2}),
    ListCase("/leads", lead_page, {"ids": ["{b.lead}", "{b.lead2}"], "total": 2}),
    ListCase("/leads?status=new", lead_page, {"ids": ["{b.lead}", "{b.lead2}"], "total": 2}),
    ListCase("/leads?search=aardvark", lead_page, {"ids": [], "total": 0}),
    ListCase("/leads?search=%2B15551000001", lead_page, {"ids": [], "total": 0}),
    ListCase("/leads?search=%2B1555", lead_page, {"ids": ["{b.lead}"], "total": 1}),  # both orgs match
    ListCase("/leads?search=one%40", lead_page, {"ids": ["{b.lead}"], "total": 1}),  # both orgs match
    ListCase("/scripts", ids(None), ["{b.script}"]),
    ListCase("/channels", ids("configs"), ["{b.channel}"]),
    ListCase("/channels/email/senders", lambda body: [row["address"] for row in body["senders"]],
             ["sales@bluejay.test"]),
    ListCase("/settings/api-keys", ids("keys"), ["{b.boot_key}", "{b.key}"]),
    ListCase("/calls", ids("calls"), ["{b.call}"]),
    ListCase("/email/messages", ids("messages"), ["{b.message}"]),
    ListCase("/email/messages?leadId={b.lead}", ids("messages"), ["{b.message}"]),
    ListCase("/numbers", ids("numbers"), ["{b.number}"]),
    ListCase("/telegram/accounts", ids("accounts"), ["{b.account}"]),
    ListCase("/billing/payment-methods", pick("stripe", "liqpay"), {"stripe": False, "liqpay": False}),
    ListCase("/billing/usage", pick("minutes", "telegramMessages", "emails"),
             {"minutes": 5, "telegramMessages": 6, "emails": 7}),
    ListCase("/analytics", analytics_view, {
        "calls": 1, "avgDuration": 30, "emails": 1, "telegram": 0, "leads": 2,
        "campaigns": [["{b.campaign}", 1], ["{b.draft}", 0]], "activity": ["{b.call}", "{b.message}"],
        "chart": {"voice": 1, "telegram": 0, "email": 1},
    }),
    ListCase("/suppressions", ids("suppressions"), ["{b.suppression}"]),
    ListCase("/suppressions?type=email&search=optout", ids("suppressions"), ["{b.suppression}"]),
    ListCase("/onboarding", pick("onboardingDone"), {"onboardingDone": True}),
    ListCase("/onboarding/complete", pick("onboardingDone"), {"onboardingDone": True}),
    ListCase("/voice", pick("id", "selectedVoices", "language", "personality"),
             {"id": "{b.voice}", "selectedVoices": ["taras"], "language": "de", "personality": "casual"}),
]


# --- seeding -------------------------------------------------------------------------------------

def this_month() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date().replace(day=1)


async def seed(tenant, pool, mark: str) -> types.SimpleNamespace:
    """A full data set for one organization; returns its ids (as wire strings) and the values to look for."""
    profile = PROFILES[mark]
    digit = profile["digit"]

    async def ok(method, path, body=None, status=200):
        reply = await tenant.call(method, DASH + path, json=body)
        assert reply.status == status, (mark, method, path, reply.status, reply.body)
        return reply.body

    script = await ok("POST", "/scripts", {"name": f"{mark} script", "content": f"{mark} pitch",
                                          "objectionHandlers": [f"{mark} rebuttal"]}, 201)
    templates = {"email": {"subject": f"{mark} offer", "body": "Hi {{firstName}}"}, "telegram": "Hi {{firstName}}"}
    campaign = await ok("POST", "/campaigns", {"name": f"{mark} running", "scriptId": script["id"],
                                              "channels": ["email", "voice", "telegram"],
                                              "settings": {"templates": templates}}, 201)
    draft = await ok("POST", "/campaigns", {"name": f"{mark} draft", "scriptId": script["id"]}, 201)
    lead = await ok("POST", "/leads", {"firstName": mark.title(), "lastName": "One", "email": f"one@{mark}.test",
                                      "phone": f"+1555{digit}000001", "company": f"{mark} inc"}, 201)
    lead2 = await ok("POST", "/leads", {"firstName": mark.title(), "lastName": "Two", "email": f"two@{mark}.test",
                                       "telegramUsername": f"{mark}_two"}, 201)
    await ok("POST", f"/campaigns/{campaign['id']}/leads", {"leadIds": [lead["id"], lead2["id"]]})
    await ok("POST", f"/campaigns/{campaign['id']}/start")
    voice = await ok("PUT", "/voice", profile["voice"])
    channel = await ok("PUT", "/channels", {"channel": "email", "config": {"fromEmail": f"sales@{mark}.test",
                                                                          "fromName": f"{mark} sales"}})
    await prove_sender(pool, f"sales@{mark}.test", tenant.org_id)
    key = await ok("POST", "/settings/api-keys", {"name": f"{mark} key"}, 201)
    suppression = (await ok("POST", "/suppressions", {"type": "email", "value": f"optout@{mark}.test"}, 201))
    if profile["onboarded"]:
        await ok("POST", "/onboarding/complete")

    org_id = tenant.org_id
    campaign_id, lead_id = uuid.UUID(campaign["id"]), uuid.UUID(lead["id"])
    number = await insert_number(pool, org_id, number=f"+1555{digit}000099", label=f"{mark} line",
                                 campaign_id=campaign_id)
    call = await insert_call(pool, org_id, lead_id=lead_id, campaign_id=campaign_id, phone_number_id=number["id"],
                             from_number=number["number"], to_number=lead["phone"], duration=profile["duration"],
                             summary=f"{mark} summary", provider_call_id=f"{mark}-call")
    message = await insert_message(pool, org_id, lead_id, campaign_id=campaign_id, content=f"{mark} hello",
                                   metadata={"subject": f"{mark} offer", "toEmail": lead["email"]},
                                   provider_id=f"{mark}-email")
    account = await insert_telegram_account(pool, org_id, phone=f"+380{digit}00000001", status="active",
                                            display_name=f"{mark} sender", username=f"{mark}_sender")
    minutes, telegram, emails = profile["usage"]
    await insert_usage(pool, org_id, this_month(), minutes=minutes, telegram=telegram, emails=emails)
    await insert_row(pool, "attempts", campaign_id=campaign_id, lead_id=lead_id, org_id=org_id, channel="email",
                     idempotency_key=f"{mark}-{lead_id}", provider_id=f"{mark}-email", outcome="sent")
    boot_key = await pool.fetchval("SELECT id FROM api_keys WHERE key_hash = $1", api_keys.hash_key(tenant.token))

    seeded = {"org": org_id, "script": script["id"], "campaign": campaign["id"], "draft": draft["id"],
              "lead": lead["id"], "lead2": lead2["id"], "voice": voice["id"], "channel": channel["id"],
              "key": key["id"], "boot_key": boot_key, "number": number["id"], "call": call["id"],
              "message": message["id"], "account": account["id"],
              "suppression": suppression["suppressions"][0]["id"]}
    ids_ = {name: str(value) for name, value in seeded.items()}
    tokens = [mark, *ids_.values(), lead["phone"], number["number"], account["phone"]]
    return types.SimpleNamespace(**ids_, tokens=tokens)


@pytest.fixture
async def tenants(api, other, pool):
    """(A, B): `api` is A, `other` is B; both fully seeded. B's own setup writes must not touch A either."""
    a = await seed(api, pool, MARK_A)
    before = await snapshot(pool, a.org)
    b = await seed(other, pool, MARK_B)
    after = await snapshot(pool, a.org)
    assert after == before, "seeding B changed A's rows:\n" + "\n".join(changed_tables(before, after))
    return a, b


def ghost_of(ids_: types.SimpleNamespace) -> types.SimpleNamespace:
    """The same names bound to ids that exist nowhere."""
    return types.SimpleNamespace(**{name: str(uuid.uuid4()) for name in vars(ids_) if name != "tokens"})


def render(template, **ids_):
    if isinstance(template, str):
        return template.format(**ids_)
    if isinstance(template, Upload):
        return Upload(render(template.text, **ids_))
    if isinstance(template, list):
        return [render(item, **ids_) for item in template]
    if isinstance(template, dict):
        return {key: render(value, **ids_) for key, value in template.items()}
    return template


async def send(tenant, case: Case, **ids_):
    path, body = DASH + render(case.path, **ids_), render(case.body, **ids_)
    if isinstance(body, Upload):
        form = aiohttp.FormData()
        form.add_field("file", body.text.encode(), filename="leads.csv", content_type="text/csv")
        return await tenant.call(case.method, path, data=form)
    return await tenant.call(case.method, path, json=body)


# --- the snapshot of A ---------------------------------------------------------------------------

async def org_tables(pool) -> list[tuple[str, str]]:
    """(table, column) pairs that hold an organization's rows: every org_id column, plus the org itself."""
    rows = await pool.fetch(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND column_name IN ('org_id', 'assigned_org_id')
           ORDER BY table_name"""
    )
    return [("organizations", "id"), *((row["table_name"], row["column_name"]) for row in rows)]


async def snapshot(pool, org_id) -> dict[str, str]:
    """Every row of the organization, as PostgreSQL renders it (jsonb text, rows in a stable order)."""
    result = {}
    for table, column in await org_tables(pool):
        result[table] = await pool.fetchval(
            f"""SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]'::jsonb)::text
                FROM "{table}" t WHERE "{column}" = $1::uuid""",
            org_id,
        )
    return result


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [f"{table}:\n  before {before.get(table)}\n  after  {after.get(table)}"
            for table in sorted(set(before) | set(after)) if before.get(table) != after.get(table)]


# --- the matrix ----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ID_CASES + NO_ID_WRITES, ids=str)
async def test_other_org_cannot_reach_or_change_a(case: Case, tenants, api, other, pool):
    a, b = tenants
    problems = []
    before = await snapshot(pool, a.org)

    names_a = "{a." in json.dumps([case.path, case.body])
    ghost = await send(other, case, a=ghost_of(a), b=b) if names_a else None
    reply = await send(other, case, a=a, b=b)
    if reply.status != case.status or (case.reply is not None and reply.body != render(case.reply, a=a, b=b)):
        problems.append(f"B got {reply.status} {reply.body}, expected {case.status} {render(case.reply, a=a, b=b)}")
    if ghost is not None and (ghost.status, ghost.body) != (reply.status, reply.body):
        problems.append(f"A's id answers {reply.status} {reply.body} but an unknown id answers "
                        f"{ghost.status} {ghost.body}: the answer tells that A's id exists")
    after = await snapshot(pool, a.org)
    if after != before:
        problems.append("A's rows changed:\n" + "\n".join(changed_tables(before, after)))

    if case.owner is not None:  # the control, after the snapshot: A may change its own rows
        control = await send(api, case, a=a, b=b)
        if control.status != case.owner:
            problems.append(f"control: A itself got {control.status} {control.body}, expected {case.owner}")
    assert not problems, f"[{case}]\n" + "\n".join(problems)


@pytest.mark.parametrize("case", LIST_CASES, ids=str)
async def test_other_org_lists_only_its_own_data(case: ListCase, tenants, other, pool):
    a, b = tenants
    before = await snapshot(pool, a.org)
    reply = await other.get(DASH + render(case.path, b=b))
    assert reply.status == 200, f"[{case}] B got {reply.status} {reply.body}"
    text = json.dumps(reply.body).lower()
    leaked = [token for token in a.tokens if token.lower() in text]
    assert not leaked, f"[{case}] B's answer holds A's data {leaked}: {reply.body}"
    seen, own = unordered(case.view(reply.body)), unordered(render(case.expected, b=b))
    assert seen == own, f"[{case}] B's view is not B's own data: {reply.body}"
    assert await snapshot(pool, a.org) == before, f"[{case}] a read by B changed A's rows"


# --- guards that keep the matrix honest ------------------------------------------------------------

async def test_every_org_table_is_seeded_for_the_snapshot(tenants, pool):
    """An empty table would make 'A unchanged' vacuous: a new org-scoped table needs a row in `seed`."""
    a, _ = tenants
    empty = [table for table, rows in (await snapshot(pool, a.org)).items() if rows == "[]"]
    assert not empty, f"seed() writes no row of A in {empty}: add one so the isolation matrix covers it"


def route_of(case) -> tuple[str, str]:
    method = case.method if isinstance(case, Case) else "GET"
    return method, DASH + re.sub(r"\{[ab]\.\w+\}", "{id}", case.path.split("?")[0])


async def test_every_dashboard_route_has_a_case(http):
    routes = {(route.method, route.resource.canonical) for route in http.server.app.router.routes()
              if route.method != "HEAD" and route.resource.canonical.startswith(DASH)}
    covered = {route_of(case) for case in ID_CASES + NO_ID_WRITES + LIST_CASES}
    assert not routes - covered, (
        f"routes without a tenant-isolation case (add a line to ID_CASES, NO_ID_WRITES or LIST_CASES): "
        f"{sorted(routes - covered)}")
    assert not covered - routes, f"cases naming routes the app does not have (they would pass vacuously): " \
                                 f"{sorted(covered - routes)}"
