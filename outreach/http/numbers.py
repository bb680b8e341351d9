"""Phone number routes: the org's numbers; search, buy and release numbers on the platform's Twilio account.

The Twilio port is built by service.py only when TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set; an
absent port is a 503 whose message the numbers page matches ("Twilio is not configured"). Twilio
refusing what the user asked (a country without numbers, a number no longer for sale) is a 400 with
Twilio's message, since the user can fix it; Twilio failing (credentials, outage) is a 502.
"""
from __future__ import annotations

import datetime
import logging
import urllib.parse
import uuid
from typing import Annotated

from aiohttp import web

from outreach.http import keys, params, validation, wire
from outreach.http.auth import admin_only, principal
from outreach.runtime import errors
from outreach.storage import db, numbers, token_bucket, usage

log = logging.getLogger(__name__)
TWILIO_NOT_CONFIGURED = "Twilio is not configured. Please add TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."
E164 = r"\+[1-9][0-9]{6,14}"
STATUS_WEBHOOK = "/api/webhook/twilio/status"
VOICE_WEBHOOK = "/api/webhook/twilio/voice"


def twilio_port(request: web.Request):
    return keys.required(request, keys.TWILIO, TWILIO_NOT_CONFIGURED)


class NumberPurchase(validation.Model):
    phone_number: Annotated[validation.Text(strip=True, pattern=E164), validation.Required(validation.blank)]
    label: Annotated[validation.Text(strip=True), validation.Empty(validation.blank)] = None


class NumberUpdate(validation.Model):
    """Only keys present are applied; a falsy label or campaignId clears it. A campaignId that is not a UUID
    names no campaign of the org: the same 400 as an unknown or foreign campaign."""

    partial = True
    label: Annotated[validation.Text(strip=True), validation.Empty(validation.falsy)] = None
    campaign_id: Annotated[validation.Uuid, validation.Empty(validation.falsy)] = None


class NumberSearchQuery(validation.Model):
    textual = True
    country: Annotated[validation.Text(pattern="[A-Za-z]{2}"), validation.Empty(validation.blank)] = "US"
    area_code: Annotated[validation.Text(pattern="[0-9]{1,6}"), validation.Empty(validation.blank)] = None


class PhoneNumber(validation.Reply):
    id: uuid.UUID
    org_id: uuid.UUID
    number: str
    label: str | None
    provider: str
    status: validation.one_of(("active", "inactive", "pending"))
    campaign_id: uuid.UUID | None
    release_after: datetime.datetime | None
    created_at: datetime.datetime


class AvailableNumber(validation.Reply):
    phone_number: str
    friendly_name: str | None
    locality: str | None
    region: str | None
    capabilities: dict


class PhoneNumberList(validation.Reply):
    numbers: list[PhoneNumber]


class AvailableNumbers(validation.Reply):
    numbers: list[AvailableNumber]


def twilio_failure(action: str, exc: errors.ServiceError) -> errors.ServiceError:
    """Twilio's message under our action's name, without the SDK details (status, code) in the body."""
    return type(exc)(f"Twilio {action} failed: {exc.message}")


def webhook_url(request: web.Request, path: str, org_id) -> str:
    """Twilio signs what it posts to this URL: the org id in the query cannot be forged."""
    public_url = request.app[keys.SETTINGS].public_url.rstrip("/")
    return f"{public_url}{path}?{urllib.parse.urlencode({'orgId': str(org_id)})}"


@params.answers(200, PhoneNumberList)
async def list_numbers(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await numbers.list_numbers(conn, principal(request).org_id)
    return wire.json_response({"numbers": [wire.to_wire(row) for row in rows]})


@params.accepts(query=NumberSearchQuery)
@params.answers(200, AvailableNumbers)
async def list_available(request: web.Request) -> web.Response:
    search = params.query(request)
    twilio = twilio_port(request)
    settings = request.app[keys.SETTINGS]
    bucket = token_bucket.TokenBucket(request.app[keys.REDIS], "number_search", settings.number_search_per_minute)
    await bucket.take(str(principal(request).org_id), "number search")
    try:
        found = await twilio.search_numbers(search["country"].upper(), search["area_code"])
    except (errors.Invalid, errors.ProviderError) as exc:
        raise twilio_failure("search", exc) from exc
    return wire.json_response({"numbers": found})


@admin_only
@params.accepts(body=NumberPurchase)
@params.answers(201, PhoneNumber)
async def buy_number(request: web.Request) -> web.Response:
    """Reserve within the plan's quota, buy on Twilio, then activate; a failed purchase drops the reservation,
    and a number bought but not stored is released at once, never orphaned."""
    values = await params.body(request)
    twilio = twilio_port(request)
    org_id = principal(request).org_id
    reservation = await reserve(request, org_id, values["phone_number"], values["label"])
    try:
        bought = await twilio.buy_number(values["phone_number"], webhook_url(request, VOICE_WEBHOOK, org_id),
                                         webhook_url(request, STATUS_WEBHOOK, org_id))
    except (errors.Invalid, errors.ProviderError) as exc:
        await release_if_bought(request, twilio, reservation, exc)
        raise twilio_failure("purchase", exc) from exc
    except BaseException:
        await drop(request, reservation)
        raise
    try:
        async with db.transaction(request.app[keys.DB]) as conn:
            row = await numbers.activate_number(conn, org_id, reservation["id"], bought["phone_number"], bought["sid"])
    except BaseException:
        await release_unstored(twilio, bought)
        await drop(request, reservation)
        raise
    return wire.json_response(wire.to_wire(row), status=201)


async def reserve(request: web.Request, org_id, phone_number: str, label: str | None) -> dict:
    """Numbers are bought and paid for on the platform's account: only while the plan has call minutes left
    (a free plan has none), else the usage 429; and within the plan's quota of numbers, else a 429 saying it."""
    plan_limits = request.app[keys.SETTINGS].plan_limits
    async with db.transaction(request.app[keys.DB]) as conn:
        await usage.check_available(conn, org_id, plan_limits, "voice")
        plan, limit = await usage.plan_quota(conn, org_id, plan_limits, "numbers")
        return await numbers.reserve_number(conn, org_id, plan, limit, {"number": phone_number, "label": label,
                                                                        "provider": "twilio"})


async def drop(request: web.Request, reservation: dict) -> None:
    async with db.transaction(request.app[keys.DB]) as conn:
        await numbers.drop_reservation(conn, reservation["org_id"], reservation["id"])


async def release_if_bought(request: web.Request, twilio, reservation: dict, exc: errors.ServiceError) -> None:
    """The answer was lost in transit (no HTTP status): Twilio may have sold us the number all the same.
    The purchase is reported failed, so a number that was bought is released rather than left unpaid-for,
    but only while no other row holds it (our reservation keeps it from being anyone else's meanwhile)."""
    try:
        if exc.details.get("status") is None:
            await release_lost_purchase(request, twilio, reservation)
    finally:
        await drop(request, reservation)


async def release_lost_purchase(request: web.Request, twilio, reservation: dict) -> None:
    phone_number = reservation["number"]
    async with db.connection(request.app[keys.DB]) as conn:
        if await numbers.held_by_another(conn, phone_number, reservation["id"]):
            log.error("number %s: purchase answer lost, and another row holds it: not released", phone_number)
            return
    try:
        sid = await twilio.find_number(phone_number)
    except errors.ServiceError:
        log.exception("number %s: purchase answer lost and the account could not be checked", phone_number)
        return
    if sid is not None:
        await release_unstored(twilio, {"sid": sid, "phone_number": phone_number})


async def release_unstored(twilio, bought: dict) -> None:
    try:
        await twilio.release_number(bought["sid"])
    except errors.ServiceError:
        log.exception("number %s (%s) was bought but neither stored nor released: release it in Twilio",
                      bought["phone_number"], bought["sid"])


@params.answers(200, PhoneNumber)
async def get_number(request: web.Request) -> web.Response:
    number_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await numbers.get_number(conn, principal(request).org_id, number_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=NumberUpdate)
@params.answers(200, PhoneNumber)
async def update_number(request: web.Request) -> web.Response:
    number_id = params.path_id(request)
    fields = await params.body(request)
    if not fields:
        raise errors.Invalid("No fields to update")
    async with db.transaction(request.app[keys.DB]) as conn:
        row = await numbers.update_number(conn, principal(request).org_id, number_id, fields)
    return wire.json_response(wire.to_wire(row))


@admin_only
@params.answers(200, validation.Success)
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
