"""Roles: Clerk tokens carry the member's role; managing keys, billing, numbers, channel settings and voice sync
needs an org admin (or an API key, which an admin made); members get 403 and nothing changes."""
from __future__ import annotations

from tests.conftest import Api
from tests.factories import insert_number

DASH = "/api/dashboard"
FORBIDDEN = {"error": "Only an organization admin can do this"}
EMAIL_SETTINGS = {"channel": "email", "config": {"fromEmail": "sales@acme.test"}}


def admin_calls(number_id) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", "/settings/api-keys", None),
        ("POST", "/settings/api-keys", {"name": "mine"}),
        ("DELETE", "/settings/api-keys?id=00000000-0000-0000-0000-000000000000", None),
        ("POST", "/billing/checkout", {"planId": "starter"}),
        ("POST", "/billing/portal", None),
        ("POST", "/billing/liqpay", {"planId": "starter"}),
        ("POST", "/numbers", {"phoneNumber": "+15550001111"}),
        ("DELETE", f"/numbers/{number_id}", None),
        ("PUT", "/channels", EMAIL_SETTINGS),
        ("POST", "/channels", {"channel": "voice", "config": {"agent": "x"}}),
        ("POST", "/channels/email/verify", {"address": "sales@acme.test"}),
        ("POST", "/voice/sync", None),
    ]


def member_of(http, clerk, user: str, org: str, v2_role: str | None = None, v1_role: str | None = None) -> Api:
    if v1_role is not None:
        return Api(http, clerk.mint(user, org_id=org, org_role=v1_role))
    return Api(http, clerk.mint(user, v=2, o={"id": org, "rol": v2_role, "slg": org}))


async def snapshot(pool) -> list:
    tables = ("api_keys", "channel_configs", "phone_numbers", "sender_addresses", "organizations")
    return [[dict(row) for row in await pool.fetch(f"SELECT * FROM {table} ORDER BY 1")] for table in tables]


async def test_members_get_403_on_admin_routes_and_nothing_changes(http, clerk, pool):
    for member in (member_of(http, clerk, "user_m2", "org_team", v2_role="member"),
                   member_of(http, clerk, "user_m1", "org_team", v1_role="org:member"),
                   member_of(http, clerk, "user_m3", "org_team", v2_role="billing_manager"),
                   member_of(http, clerk, "user_m4", "org_team", v2_role=None)):
        assert (await member.get(f"{DASH}/campaigns")).status == 200
        org_id = await pool.fetchval("SELECT id FROM organizations WHERE clerk_org_id = 'org_team'")
        number = await insert_number(pool, org_id)
        before = await snapshot(pool)
        for method, path, body in admin_calls(number["id"]):
            reply = await member.call(method, DASH + path, json=body)
            assert (reply.status, reply.body) == (403, FORBIDDEN), (method, path, reply.body)
        assert await snapshot(pool) == before
        await pool.execute("DELETE FROM phone_numbers")


async def test_members_keep_the_everyday_routes(http, clerk):
    member = member_of(http, clerk, "user_m", "org_team", v2_role="member")
    assert (await member.post(f"{DASH}/campaigns", json={"name": "Spring"})).status == 201
    assert (await member.get(f"{DASH}/channels")).status == 200
    assert (await member.get(f"{DASH}/channels/email/senders")).status == 200
    assert (await member.get(f"{DASH}/billing/usage")).status == 200


async def test_admins_of_either_token_version_pass_the_role_check(http, clerk, pool):
    for admin in (member_of(http, clerk, "user_a2", "org_team", v2_role="admin"),
                  member_of(http, clerk, "user_a1", "org_team", v1_role="org:admin")):
        saved = await admin.put(f"{DASH}/channels", json=EMAIL_SETTINGS)
        assert saved.status == 200, saved.body
        created = await admin.post(f"{DASH}/settings/api-keys", json={"name": "ci"})
        assert created.status == 201, created.body
        org_id = await pool.fetchval("SELECT id FROM organizations WHERE clerk_org_id = 'org_team'")
        number = await insert_number(pool, org_id)
        for method, path, body in admin_calls(number["id"]):
            reply = await admin.call(method, DASH + path, json=body)
            assert reply.status != 403, (method, path, reply.body)


async def test_a_user_without_organization_administers_their_personal_org(http, clerk):
    solo = Api(http, clerk.mint("user_solo"))
    assert (await solo.put(f"{DASH}/channels", json=EMAIL_SETTINGS)).status == 200
    assert (await solo.post(f"{DASH}/settings/api-keys", json={"name": "mine"})).status == 201


async def test_an_api_key_acts_as_an_admin_of_its_org(api, pool):
    assert (await api.put(f"{DASH}/channels", json=EMAIL_SETTINGS)).status == 200
    assert (await api.post(f"{DASH}/settings/api-keys", json={"name": "ci"})).status == 201
    assert (await api.get(f"{DASH}/settings/api-keys")).status == 200
