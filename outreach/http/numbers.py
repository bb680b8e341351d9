"""Phone number routes: the org's numbers; search, buy and release numbers on the platform's Twilio account.

The Twilio port is built by service.py only when TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set; an
absent port is a 503 whose message the numbers page matches ("Twilio is not configured"). Twilio
refusing what the user asked (a country without numbers, a number no longer for sale) is a 400 with
Twilio's message, since the user can fix it; Twilio failing (credentials, outage) is a 502.
"""
from __future__ import annotations

import logging
import re
import urllib.parse

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.runtime import errors
from outreach.storage import db, numbers, usage

log = logging.getLogger(__name__)
TWILIO_NOT_CONFIGURED = "Twilio is not configured. Please add TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."
E164 = re.compile(r"\+[1-9]\d{6,14}")
COUNTRY = re.compile(r"[A-Za-z]{2}")
AREA_CODE = re.compile(r"\d{1,6}")
STATUS_WEBHOOK = "/api/webhook/twilio/status"
VOICE_WEBHOOK = "/api/webhook/twilio/voice"


def twilio_port(request: web.Request):
    return keys.required(request, keys.TWILIO, TWILIO_NOT_CONFIGURED)


def number_fields(body: dict) -> dict:
    """Only keys present are applied; a falsy label or campaignId clears it."""
    fields: dict = {}
    if "label" in body:
        fields["label"] = params.optional_text(body, "label") if body["label"] else None
    if "campaignId" in body:
        campaign_id = body["campaignId"]
        fields["campaign_id"] = campaign_uuid(campaign_id) if campaign_id else None
    if not fields:
        raise errors.Invalid("No fields to update")
    return fields


def campaign_uuid(value):
    """Not a UUID names no campaign of the org: the same 400 as an unknown or foreign campaign."""
    return params.parse_uuid(value, "Campaign not found", errors.Invalid)


def phone_number_of(body: dict) -> str:
    value = body.get("phoneNumber")
    if value is None or value == "":
        raise errors.Invalid("Missing required field: phoneNumber")
    if not isinstance(value, str) or not E164.fullmatch(value.strip()):
        raise errors.Invalid("phoneNumber must be in E.164 format, like +14155551234")
    return value.strip()


def search_of(request: web.Request) -> tuple[str, str | None]:
    country = request.query.get("country") or "US"
    if not COUNTRY.fullmatch(country):
        raise errors.Invalid("country must be a two-letter ISO country code, like US")
    area_code = request.query.get("areaCode") or None
    if area_code is not None and not AREA_CODE.fullmatch(area_code):
        raise errors.Invalid("areaCode must be digits, like 415")
    return country.upper(), area_code


def twilio_failure(action: str, exc: errors.ServiceError) -> errors.ServiceError:
    """Twilio's message under our action's name, without the SDK details (status, code) in the body."""
    return type(exc)(f"Twilio {action} failed: {exc.message}")


def webhook_url(request: web.Request, path: str, org_id) -> str:
    """Twilio signs what it posts to this URL: the org id in the query cannot be forged."""
    public_url = request.app[keys.SETTINGS].public_url.rstrip("/")
    return f"{public_url}{path}?{urllib.parse.urlencode({'orgId': str(org_id)})}"


async def list_numbers(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await numbers.list_numbers(conn, principal(request).org_id)
    return wire.json_response({"numbers": [wire.to_wire(row) for row in rows]})


async def list_available(request: web.Request) -> web.Response:
    country, area_code = search_of(request)
    twilio = twilio_port(request)
    try:
        found = await twilio.search_numbers(country, area_code)
    except (errors.Invalid, errors.ProviderError) as exc:
        raise twilio_failure("search", exc) from exc
    return wire.json_response({"numbers": found})


async def buy_number(request: web.Request) -> web.Response:
    """Buy on Twilio, then store; a number bought but not stored is released at once, never orphaned."""
    body = await params.read_json(request)
    phone_number, label = phone_number_of(body), params.optional_text(body, "label")
    twilio = twilio_port(request)
    org_id = principal(request).org_id
    await check_plan(request, org_id)
    try:
        bought = await twilio.buy_number(phone_number, webhook_url(request, VOICE_WEBHOOK, org_id),
                                         webhook_url(request, STATUS_WEBHOOK, org_id))
    except (errors.Invalid, errors.ProviderError) as exc:
        raise twilio_failure("purchase", exc) from exc
    fields = {"number": bought["phone_number"], "label": label, "provider": "twilio",
              "provider_sid": bought["sid"], "status": "active"}
    try:
        async with db.transaction(request.app[keys.DB]) as conn:
            row = await numbers.create_number(conn, org_id, fields)
    except BaseException:
        await release_unstored(twilio, bought)
        raise
    return wire.json_response(wire.to_wire(row), status=201)


async def check_plan(request: web.Request, org_id) -> None:
    """Numbers are bought and paid for on the platform's account: only while the plan has call minutes left
    (a free plan has none), else the usage 429."""
    async with db.connection(request.app[keys.DB]) as conn:
        await usage.check_available(conn, org_id, request.app[keys.SETTINGS].plan_limits, "voice")


async def release_unstored(twilio, bought: dict) -> None:
    try:
        await twilio.release_number(bought["sid"])
    except errors.ServiceError:
        log.exception("number %s (%s) was bought but neither stored nor released: release it in Twilio",
                      bought["phone_number"], bought["sid"])


async def get_number(request: web.Request) -> web.Response:
    number_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await numbers.get_number(conn, principal(request).org_id, number_id)
    return wire.json_response(wire.to_wire(row))


async def update_number(request: web.Request) -> web.Response:
    number_id = params.path_id(request)
    fields = number_fields(await params.read_json(request))
    async with db.transaction(request.app[keys.DB]) as conn:
        row = await numbers.update_number(conn, principal(request).org_id, number_id, fields)
    return wire.json_response(wire.to_wire(row))


async def delete_number(request: web.Request) -> web.Response:
    """Release the number at Twilio first: a row is never deleted while its number is still paid for."""
    number_id, org_id = params.path_id(request), principal(request).org_id
    async with db.connection(request.app[keys.DB]) as conn:
        row = await numbers.get_provider_number(conn, org_id, number_id)
    if row["provider"] == "twilio":
        await release_owned(twilio_port(request), row)
    async with db.transaction(request.app[keys.DB]) as conn:
        await numbers.delete_number(conn, org_id, number_id)
    return wire.json_response({"success": True})


async def release_owned(twilio, row: dict) -> None:
    """By its Twilio sid; a number stored without one is looked up by its value. Already gone is fine."""
    try:
        sid = row["provider_sid"] or await twilio.find_number(row["number"])
        if sid is not None:
            await twilio.release_number(sid)
    except (errors.Invalid, errors.ProviderError) as exc:
        raise twilio_failure("release", exc) from exc


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/numbers"
    router.add_get(base, list_numbers)
    router.add_post(base, buy_number)
    router.add_get(base + "/available", list_available)
    router.add_get(base + "/{id}", get_number)
    router.add_put(base + "/{id}", update_number)
    router.add_patch(base + "/{id}", update_number)
    router.add_delete(base + "/{id}", delete_number)
