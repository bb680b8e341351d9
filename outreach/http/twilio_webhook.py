"""Twilio webhooks: call status callbacks (how every call ends) and calls coming in to our numbers.

Both are refused unless Twilio signed them (X-Twilio-Signature: HMAC-SHA1 under the platform's auth
token over our public URL, query included, and the form). The organization comes from that signed
query, set when the call was placed or the number bought. A callback seen before (Twilio's retry, a
replay) is acknowledged and changes nothing: one event per Call SID and status.
"""
from __future__ import annotations

import logging
from typing import Annotated

import multidict
from aiohttp import web
from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_pascal
from redis.exceptions import RedisError
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from outreach.http import keys, params, validation
from outreach.http.numbers import TWILIO_NOT_CONFIGURED
from outreach.runtime import agent_protocol, errors
from outreach.storage import calls, db, leads, numbers, scripts, usage, voice, webhook_events

log = logging.getLogger(__name__)
FORM_TYPE = "application/x-www-form-urlencoded"
# Twilio's CallStatus values that end a call, as our call statuses.
END_STATUSES = {"completed": "completed", "busy": "busy", "no-answer": "no_answer", "failed": "failed",
                "canceled": "failed"}
MACHINE_ANSWERS = ("machine_", "fax")  # AnsweredBy values of answering machine detection
NOT_AVAILABLE = "Sorry, nobody can take your call right now. Goodbye."


def reject_twiml() -> str:
    """<Reject>: the call is never answered, so nobody is billed for it."""
    response = VoiceResponse()
    response.reject(reason="rejected")
    return str(response)


REJECT = reject_twiml()
OrgId = Annotated[validation.Uuid, validation.Required(validation.blank), Field(
    description="set by us when the call was placed or the number bought; signed by Twilio")]
Given = Annotated[str, validation.Required(validation.blank)]
OptionalText = Annotated[str, validation.Empty(validation.blank)]


class TwilioStatusQuery(validation.Model):
    textual = True
    org_id: OrgId
    call_log_id: Annotated[validation.Uuid, validation.Empty(validation.blank)] = None


class TwilioVoiceQuery(validation.Model):
    textual = True
    org_id: OrgId


class TwilioForm(validation.Model):
    model_config = ConfigDict(alias_generator=to_pascal)
    textual = True


class TwilioCallStatus(TwilioForm):
    """Twilio's status callback; other parameters are signed and ignored."""

    call_sid: Given
    call_status: Given
    answered_by: OptionalText = None
    call_duration: Annotated[int, validation.TextInteger(minimum=0), validation.Empty(validation.blank),
                             Field(description="seconds")] = None


class TwilioIncomingCall(TwilioForm):
    """Twilio's incoming-call request; other parameters are signed and ignored."""

    call_sid: Given
    to: Given
    from_: Annotated[OptionalText, Field(alias="From")] = None


class TwilioSignature(validation.Model):
    textual = True
    signature: Annotated[str, Field(alias=SIGNATURE_HEADER, description=(
        "base64 HMAC-SHA1 of our public URL and the form, under the auth token"))]


async def verified_form(request: web.Request) -> tuple[dict, dict]:
    """The form of a request Twilio signed, and its query (the organization), each through its model."""
    token = request.app[keys.SETTINGS].twilio_auth_token
    if not token:
        raise errors.NotConfigured(TWILIO_NOT_CONFIGURED)
    if request.content_type != FORM_TYPE:
        raise errors.Invalid(f"Expected {FORM_TYPE}")
    form = multidict.MultiDict((key, value) for key, value in (await request.post()).items()
                               if isinstance(value, str))
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature or not RequestValidator(token).validate(public_url(request), form, signature):
        raise errors.Unauthorized("Invalid Twilio signature")
    return params.parse(request, "form", form), params.query(request)


def public_url(request: web.Request) -> str:
    """The URL Twilio called, as Twilio saw it: behind a proxy the request's own host and scheme differ."""
    return request.app[keys.SETTINGS].public_url.rstrip("/") + request.path_qs


def end_state(values: dict) -> tuple[str | None, int | None, str | None]:
    """(our call status or None while the call goes on, duration in seconds, AnsweredBy)."""
    status = END_STATUSES.get(values["call_status"])
    answered_by = values["answered_by"]
    if status == "completed" and answered_by and answered_by.startswith(MACHINE_ANSWERS):
        status = "voicemail"
    return status, values["call_duration"], answered_by


@params.accepts(form=TwilioCallStatus, query=TwilioStatusQuery, headers=TwilioSignature)
@params.answers(204, media_type="")
async def call_status(request: web.Request) -> web.Response:
    """Intermediate statuses are acknowledged; an end status ends the call once and wakes the waiting line."""
    form, query = await verified_form(request)
    sid, event, org_id, call_id = form["call_sid"], form["call_status"], query["org_id"], query["call_log_id"]
    status, duration, answered_by = end_state(form)
    if status is None:  # initiated, ringing, in-progress: the log already says in progress
        return web.Response(status=204)
    async with db.transaction(request.app[keys.DB]) as conn:
        if not await webhook_events.record_event(conn, "twilio", f"{sid}:{event}"):
            return web.Response(status=204)
        ended = await calls.end_call(conn, org_id, call_id, sid, status, duration, answered_by)
        if ended is not None and ended["direction"] == "inbound":  # outbound minutes count with the campaign run
            await calls.count_minutes(conn, org_id, ended["duration"] or 0)
    if ended is not None:
        await ring(request, sid)
    return web.Response(status=204)


async def ring(request: web.Request, sid: str) -> None:
    """A wake-up lost to a Redis failure only delays the line, which re-reads PostgreSQL on its own: the
    callback, already applied, is still acknowledged."""
    try:
        await calls.ring_call_end(request.app[keys.REDIS], sid)
    except RedisError:
        log.warning("call %s ended but its line could not be woken through Redis", sid, exc_info=True)


@params.accepts(form=TwilioIncomingCall, query=TwilioVoiceQuery, headers=TwilioSignature)
@params.answers(200, media_type="text/xml")
async def incoming_call(request: web.Request) -> web.Response:
    """A call to one of the org's numbers: logged, and connected to the voice agent with the org's script."""
    form, query = await verified_form(request)
    sid, to_number, caller, org_id = form["call_sid"], form["to"], form["from_"], query["org_id"]
    async with db.transaction(request.app[keys.DB]) as conn:
        refusal = await why_not_answered(request, conn, org_id, to_number)
        if refusal is not None:  # rejected before it is answered: Twilio bills nothing, we count nothing
            log.info("incoming call %s to %s rejected: %s", sid, to_number, refusal)
            return twiml(REJECT)
        opened = await calls.open_inbound_call(conn, org_id, to_number, sid, caller)
        if opened is None:
            return twiml(agent_protocol.hangup_twiml("This number is not in service. Goodbye."))
        config = await inbound_config(conn, opened, to_number, caller)
    agent = request.app.get(keys.VOICE_AGENT)
    if agent is None:
        log.warning("incoming call %s not answered: the voice agent is not configured", sid)
        return twiml(agent_protocol.hangup_twiml(NOT_AVAILABLE))
    try:
        await agent.prepare_call(config)
    except errors.ServiceError as exc:
        log.warning("incoming call %s not connected to the voice agent: %s", sid, exc.message)
        return twiml(agent_protocol.hangup_twiml(NOT_AVAILABLE))
    return twiml(agent_protocol.stream_twiml(agent.stream_url(), agent_protocol.stream_parameters(config)))


async def why_not_answered(request: web.Request, conn, org_id, to_number: str) -> str | None:
    """Why the org may not take this call (its plan lapsed, or has no minutes left); None when it may."""
    status = await numbers.number_status(conn, org_id, to_number)
    if status is None:
        return None  # not the org's number: answered as not in service
    if status != "active":
        return "the number is not active (the plan lapsed)"
    try:
        await usage.check_available(conn, org_id, request.app[keys.SETTINGS].plan_limits, "voice")
    except errors.RateLimited as exc:
        return exc.message
    return None


async def inbound_config(conn, opened: dict, to_number: str, from_number: str | None) -> dict:
    """The org's latest script and voice settings, and the caller when they are one of the org's leads."""
    org_id = opened["org_id"]
    script = next(iter(await scripts.list_scripts(conn, org_id)), None)
    voice_config = await voice.get_voice_config(conn, org_id)
    lead = await leads.get_lead(conn, org_id, opened["lead_id"]) if opened["lead_id"] is not None else None
    call = {"call_log_id": opened["id"], "org_id": org_id, "direction": "inbound", "to": to_number,
            "from": from_number}
    return agent_protocol.call_config(call, script=(script or {}).get("content"),
                                      objection_handlers=(script or {}).get("objection_handlers"),
                                      voice=voice_config, lead=lead)


def twiml(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/xml")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/webhook/twilio/status", call_status)
    router.add_post("/api/webhook/twilio/voice", incoming_call)
