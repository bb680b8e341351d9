"""Onboarding routes: whether the organization has finished the setup wizard."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal
from outreach.storage import db, orgs


class Onboarding(validation.Reply):
    onboarding_done: bool


class OnboardingCompleted(validation.Reply):
    success: bool
    onboarding_done: bool


@params.answers(200, Onboarding)
async def get_onboarding(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        org = await orgs.get_org(conn, principal(request).org_id)
    return wire.json_response({"onboardingDone": org["onboarding_done"]})


@params.answers(200, OnboardingCompleted)
async def complete_onboarding(request: web.Request) -> web.Response:
    """Idempotent; the request body, if any, is ignored."""
    async with db.connection(request.app[keys.DB]) as conn:
        await orgs.complete_onboarding(conn, principal(request).org_id)
    return wire.json_response({"success": True, "onboardingDone": True})


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/onboarding"
    router.add_get(base, get_onboarding)
    router.add_get(base + "/complete", get_onboarding)
    router.add_post(base + "/complete", complete_onboarding)
