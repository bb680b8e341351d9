"""Onboarding routes over HTTP and PostgreSQL: a flag on the organization."""
from __future__ import annotations

BASE = "/api/dashboard/onboarding"


async def test_starts_false_and_completing_is_idempotent(api, other):
    for path in (BASE, BASE + "/complete"):
        reply = await api.get(path)
        assert reply.status == 200 and reply.body == {"onboardingDone": False}
    for _ in range(2):
        reply = await api.post(BASE + "/complete")
        assert reply.status == 200 and reply.body == {"success": True, "onboardingDone": True}
    for path in (BASE, BASE + "/complete"):
        assert (await api.get(path)).body == {"onboardingDone": True}
    assert (await other.get(BASE)).body == {"onboardingDone": False}


async def test_requires_authentication(http, pool, api):
    for method, path in [("GET", BASE), ("GET", BASE + "/complete"), ("POST", BASE + "/complete")]:
        async with http.request(method, path, headers={"Authorization": "Bearer tp_live_" + "0" * 64}) as response:
            assert response.status == 401 and await response.json() == {"error": "Unauthorized"}
    assert await pool.fetchval("SELECT count(*) FROM organizations WHERE onboarding_done") == 0


async def test_bad_input(api, pool):
    """The routes take no body and no query: whatever is sent is ignored, never a 500."""
    cases = [
        ("GET", BASE + "?onboardingDone=true", {}),
        ("GET", BASE + "/complete?x=1", {}),
    ]
    for method, path, kwargs in cases:
        reply = await api.call(method, path, **kwargs)
        assert reply.status == 200 and reply.body == {"onboardingDone": False}, (method, path, reply.body)
    for method, path in [("PUT", BASE), ("DELETE", BASE + "/complete"), ("POST", BASE)]:
        reply = await api.call(method, path, json={"onboardingDone": True})
        assert reply.status == 405 and reply.body == {"error": "Method not allowed"}, (method, path, reply.body)
    assert await pool.fetchval("SELECT count(*) FROM organizations WHERE onboarding_done") == 0
    for kwargs in [{"raw": b"{not json"}, {"json": {"onboardingDone": False}}, {"json": [1]}]:
        reply = await api.post(BASE + "/complete?onboardingDone=false", **kwargs)
        assert reply.status == 200 and reply.body == {"success": True, "onboardingDone": True}, (kwargs, reply.body)
    assert await pool.fetchval("SELECT count(*) FROM organizations WHERE onboarding_done") == 1
