"""The do-not-contact list over HTTP: adding (one or many, normalised), listing, removing, the CSV import, and
the one-off send paths that honour it."""
from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.resend import ResendEmail
from outreach.http import keys
from outreach.runtime import optout
from outreach.storage import migrate, suppressions
from tests.conftest import Api
from tests.factories import insert_lead

PATH = "/api/dashboard/suppressions"


@pytest.fixture
async def http(settings, pool, redis, resend):
    """This module's app sends email for real, to the local Resend (the `api` and `other` fixtures use it)."""
    email = ResendEmail(resend.api_key, resend.url(), rate_per_second=1000, timeout=2)
    app = build_app(dataclasses.replace(settings, email_from="Acme <sales@acme.test>"),
                    Deps(pool=pool, redis=redis, email=email))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()
    await email.close()


async def add(api, body, status=201):
    reply = await api.post(PATH, json=body)
    assert reply.status == status, reply.body
    return reply.body


async def test_one_entry_is_normalised_and_answered_with_its_row(api, pool):
    body = await add(api, {"type": "email", "value": "  Ann@Example.COM "})
    [row] = body["suppressions"]
    assert body["added"] == 1
    assert (row["type"], row["value"], row["source"]) == ("email", "ann@example.com", "manual")
    assert set(row) == {"id", "type", "value", "source", "createdAt"}
    stored = await pool.fetchrow("SELECT org_id, type, value FROM suppressions")
    assert tuple(stored) == (api.org_id, "email", "ann@example.com")


async def test_many_entries_each_normalised_and_a_repeat_is_kept_once(api, pool):
    entries = [{"type": "phone", "value": "+1 (555) 010-0199"}, {"type": "telegram", "value": "@Bob_B"},
               {"type": "email", "value": "x@y.test"}, {"type": "email", "value": "X@Y.test"}]
    body = await add(api, {"entries": entries})
    assert sorted((row["type"], row["value"]) for row in body["suppressions"]) == [
        ("email", "x@y.test"), ("phone", "+15550100199"), ("telegram", "bob_b")]
    again = await add(api, {"entries": entries[:1]})
    assert again["added"] == 0 and again["suppressions"][0]["id"] == next(
        row["id"] for row in body["suppressions"] if row["type"] == "phone")
    assert await pool.fetchval("SELECT count(*) FROM suppressions") == 3


@pytest.mark.parametrize("body, message", [
    ({"type": "email"}, "type and value are both required"),
    ({}, 'Send one entry {"type", "value"} or {"entries": [{"type", "value"}, ...]}'),
    ({"type": "email", "value": "a@b.test", "entries": [{"type": "email", "value": "c@d.test"}]},
     'Send one entry {"type", "value"} or {"entries": [{"type", "value"}, ...]}'),
    ({"type": "fax", "value": "1"}, "type must be one of: email, phone, telegram"),
    ({"type": "email", "value": "nope"}, "'nope' is not an email address"),
    ({"type": "phone", "value": 380441234567}, "value must be a non-empty string of at most 320 characters"),
    ({"entries": []}, "entries must not be empty"),
    ({"entries": "a@b.test"}, "entries must be an array of {type, value}"),
    ({"entries": [{"type": "email", "value": "a@b.test"}, {"type": "phone", "value": "12"}]},
     "entries[1]: '12' is not a phone number in international (E.164) form"),
    ({"entries": [{"type": "email", "value": f"u{i}@b.test"} for i in range(1001)]},
     "At most 1000 entries per request"),
])
async def test_bad_input_is_a_400_and_writes_nothing(api, pool, body, message):
    reply = await api.post(PATH, json=body)
    assert (reply.status, reply.body) == (400, {"error": message})
    assert await pool.fetchval("SELECT count(*) FROM suppressions") == 0


async def test_the_list_is_paged_searchable_and_filtered_by_type(api, other):
    await add(api, {"entries": [{"type": "email", "value": f"lead{i}@acme.test"} for i in range(30)]
                    + [{"type": "phone", "value": "+15550100199"}, {"type": "telegram", "value": "acme_fan"}]})
    await add(other, {"type": "email", "value": "lead1@acme.test"})
    page = (await api.get(PATH + "?limit=10&page=2")).body
    assert len(page["suppressions"]) == 10
    assert page["pagination"] == {"page": 2, "limit": 10, "total": 32, "totalPages": 4}
    emails = (await api.get(PATH + "?type=email&search=LEAD1")).body
    assert sorted(row["value"] for row in emails["suppressions"]) == sorted(
        f"lead{i}@acme.test" for i in (1, *range(10, 20)))
    assert [row["value"] for row in (await api.get(PATH + "?type=telegram")).body["suppressions"]] == ["acme_fan"]
    assert (await api.get(PATH + "?type=all")).body["pagination"]["total"] == 32
    bad = await api.get(PATH + "?type=fax")
    assert (bad.status, bad.body) == (400, {"error": "type must be one of: email, phone, telegram"})


async def test_delete_removes_the_entry_and_another_orgs_id_is_a_404(api, other, pool):
    row = (await add(api, {"type": "email", "value": "ann@example.com"}))["suppressions"][0]
    assert (await other.delete(f"{PATH}/{row['id']}")).status == 404
    assert (await api.delete(f"{PATH}/not-a-uuid")).status == 404
    assert (await api.delete(f"{PATH}/{row['id']}")).body == {"success": True}
    assert (await api.delete(f"{PATH}/{row['id']}")).status == 404
    assert await pool.fetchval("SELECT count(*) FROM suppressions") == 0


async def test_only_an_admin_deletes_and_a_persons_own_opt_out_is_never_deleted(api, http, clerk, pool):
    rows = {row["value"]: row for row in (await add(api, {"entries": [
        {"type": "email", "value": f"{name}@example.com"} for name in ("manual", "unsub", "complaint", "bounce")]}))[
        "suppressions"]}
    await pool.execute("""UPDATE suppressions SET source = CASE split_part(value, '@', 1)
                              WHEN 'unsub' THEN 'unsubscribe' ELSE split_part(value, '@', 1) END
                          WHERE value <> 'manual@example.com'""")
    org = "org_acme"  # the tenant is self-hosted: give it a Clerk id so its members can be minted tokens
    await pool.execute("UPDATE organizations SET clerk_org_id = $2 WHERE id = $1", api.org_id, org)
    member = Api(http, clerk.mint("user_m", v=2, o={"id": org, "rol": "member", "slg": org}))
    admin = Api(http, clerk.mint("user_a", v=2, o={"id": org, "rol": "admin", "slg": org}))
    reply = await member.delete(f"{PATH}/{rows['manual@example.com']['id']}")
    assert (reply.status, reply.body) == (403, {"error": "Only an organization admin can do this"})
    for value in ("unsub@example.com", "complaint@example.com"):
        reply = await admin.delete(f"{PATH}/{rows[value]['id']}")
        assert reply.status == 409 and "opt-out" in reply.body["error"] and "cannot be deleted" in reply.body["error"]
    for value in ("manual@example.com", "bounce@example.com"):
        assert (await admin.delete(f"{PATH}/{rows[value]['id']}")).body == {"success": True}
    assert sorted(await pool.fetch("SELECT value FROM suppressions")) == [("complaint@example.com",),
                                                                         ("unsub@example.com",)]


async def test_an_unsubscribe_of_an_address_already_listed_by_hand_makes_it_permanent(api, http, pool):
    row = (await add(api, {"type": "email", "value": "ann@example.com"}))["suppressions"][0]
    token = optout.unsubscribe_token(http.app[keys.SETTINGS].secret_key, api.org_id, "ann@example.com")
    assert (await http.post(f"/u/{token}")).status == 200
    assert await pool.fetchval("SELECT source FROM suppressions WHERE id = $1", row["id"]) == "unsubscribe"
    assert (await api.delete(f"{PATH}/{row['id']}")).status == 409


async def test_a_username_suppressed_in_any_form_matches_a_lead_saved_as_a_link(api, pool, resend):
    await pool.execute("UPDATE organizations SET plan = 'starter' WHERE id = $1", api.org_id)
    leads = []
    for typed in ("https://t.me/JohnDoe", "t.me/Jane_Roe/", "@MaxMustermann"):
        created = await api.post("/api/dashboard/leads", json={"email": f"{len(leads)}@example.com",
                                                              "telegramUsername": typed})
        assert created.status == 201, created.body
        leads.append(created.body)
    form = aiohttp.FormData()
    form.add_field("file", b"email,telegram\n3@example.com,HTTPS://T.ME/Ann_Lee/\n4@example.com,t.me/JOHNDOE\n",
                   filename="leads.csv", content_type="text/csv")
    imported = (await api.post("/api/dashboard/leads/import", data=form)).body
    assert (imported["imported"], imported["duplicates"]) == (1, 1)  # the second row is @JohnDoe again
    leads.append((await api.get("/api/dashboard/leads?search=3@example.com")).body["leads"][0])
    assert [lead["telegramUsername"] for lead in leads] == ["johndoe", "jane_roe", "maxmustermann", "ann_lee"]
    await add(api, {"entries": [{"type": "telegram", "value": value}
                                for value in ("@JohnDoe", "https://t.me/jane_roe", "maxmustermann", "Ann_Lee")]})
    for lead in leads:  # suppressed by its username: not contacted on any channel
        reply = await api.post("/api/dashboard/email/send", json={"leadId": lead["id"], "subject": "Hi",
                                                                   "body": "Hello", "toEmail": lead["email"]})
        assert (reply.status, reply.body) == (409, {"error": "Lead is on the do-not-contact list: it is not contacted"})
    assert resend.requests == []


async def test_migration_015_rewrites_older_usernames_in_their_one_form(api, pool):
    typed = ["https://t.me/JohnDoe", "t.me/Jane_Roe/", "@MaxMustermann", "plain_name", "@"]
    for username in typed:  # rows as older versions stored them
        await insert_lead(pool, api.org_id, email=f"{len(username)}{username[-1]}@example.com",
                          telegram_username=username)
    (sql,) = [text for number, _, text in migrate.list_migrations() if number == 15]
    await pool.execute(sql)
    stored = {row["telegram_username"] for row in await pool.fetch("SELECT telegram_username FROM leads")}
    assert stored == {"johndoe", "jane_roe", "maxmustermann", "plain_name", None}
    await add(api, {"type": "telegram", "value": "@JOHNDOE"})
    assert await pool.fetchval(f"SELECT count(*) FROM leads l WHERE {suppressions.LEAD_SUPPRESSED}") == 1


async def upload(api, text: str):
    form = aiohttp.FormData()
    form.add_field("file", text.encode(), filename="optouts.csv", content_type="text/csv")
    return await api.post(PATH + "/import", data=form)


async def test_csv_import(api, pool):
    await add(api, {"type": "email", "value": "old@acme.test"})
    reply = await upload(api, "email,phone\nold@acme.test,\nNEW@acme.test,+380 44 123 4567\nbroken,\n")
    assert reply.status == 200, reply.body
    assert reply.body == {"success": True, "imported": 2, "total": 3, "duplicates": 1,
                          "errors": [{"row": 3, "error": "'broken' is not an email address"}]}
    rows = await pool.fetch("SELECT type, value, source FROM suppressions ORDER BY value")
    assert [tuple(row) for row in rows] == [("phone", "+380441234567", "import"), ("email", "new@acme.test", "import"),
                                           ("email", "old@acme.test", "manual")]
    empty = await upload(api, "email\nbroken\n")
    assert empty.status == 400 and empty.body["error"] == "No valid contacts found in CSV"


async def test_email_send_refuses_a_suppressed_lead_before_writing_anything(api, pool, resend):
    await pool.execute("UPDATE organizations SET plan = 'starter' WHERE id = $1", api.org_id)
    ann = await insert_lead(pool, api.org_id, email="Ann@Example.com")
    bob = await insert_lead(pool, api.org_id, phone="+1 555 010 0199", email="bob@example.com")
    await add(api, {"entries": [{"type": "email", "value": "ann@example.com"}, {"type": "phone", "value": "+15550100199"}]})
    for lead in (ann, bob):  # bob is suppressed by his phone number: he is not contacted on any channel
        reply = await api.post("/api/dashboard/email/send", json={"leadId": str(lead["id"]), "subject": "Hi",
                                                                   "body": "Hello", "toEmail": lead["email"]})
        assert (reply.status, reply.body) == (409, {"error": "Lead is on the do-not-contact list: it is not contacted"})
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    assert resend.requests == [] and await pool.fetchval("SELECT coalesce(sum(emails), 0) FROM usage") == 0
    await api.delete(f"{PATH}/{(await api.get(PATH + '?type=email')).body['suppressions'][0]['id']}")
    reply = await api.post("/api/dashboard/email/send", json={"leadId": str(ann["id"]), "subject": "Hi",
                                                               "body": "Hello", "toEmail": "Ann@Example.com"})
    assert reply.status == 200 and len(resend.requests) == 1  # the control: removed from the list, she is written to


@pytest.mark.parametrize("method, path, body", [
    ("GET", PATH + "?page=abc&limit=0", None), ("GET", PATH + "?search=%00%27%25_", None),
    ("GET", PATH + "?type=", None), ("POST", PATH, None), ("POST", PATH, [1, 2]), ("POST", PATH, "text"),
    ("POST", PATH, {"type": None, "value": None}), ("POST", PATH, {"entries": [None]}),
    ("POST", PATH, {"entries": [{"type": "email"}]}), ("POST", PATH, {"type": "telegram", "value": "x" * 400}),
    ("POST", PATH, {"type": "phone", "value": "+٣٨٠٤٤١٢٣٤٥٦٧"}), ("POST", PATH, {"type": "email", "value": "a@b.c\x00"}),
    ("DELETE", PATH + "/00000000-0000-0000-0000-000000000000", None), ("DELETE", PATH + "/%00", None),
    ("POST", PATH + "/import", {"file": "x"}),
])
async def test_odd_requests_are_answered_without_a_server_error(api, method, path, body):
    reply = await api.call(method, path, json=body)
    assert 400 <= reply.status < 500 or reply.status in (200, 201), (reply.status, reply.body)
    if reply.status >= 400:
        assert set(reply.body) == {"error"}


@pytest.mark.parametrize("token", ["%00", "a" * 5000, "é.é", "a..b", "YQ.YQ", "YWJj.%F0%9F%98%80"])
async def test_odd_unsubscribe_tokens_are_a_400(http, token):
    for method in ("GET", "POST"):
        async with http.request(method, f"/u/{token}") as response:
            assert response.status in (400, 404), (method, token, response.status)
