"""The voice agent's end-of-call report: transcript, summary, sentiment, score and recording, into the call log.

Refused unless signed with VOICE_AGENT_SECRET over its timestamp and body (runtime.agent_protocol),
with the timestamp within 300 s. A report already applied (the same signature: a retry or a replay
inside the tolerance) is acknowledged and changes nothing. The call is named by its log id and
organization, which the agent got with the call's configuration.
"""
from __future__ import annotations

import math
import time

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.voice import VOICE_AGENT_NOT_CONFIGURED
from outreach.runtime import agent_protocol, errors
from outreach.storage import calls, db, webhook_events

SENTIMENTS = ("positive", "negative", "neutral")
ROLES = ("assistant", "user")


async def agent_report(request: web.Request) -> web.Response:
    signature = await verify(request)
    report = await params.read_json(request)
    call_id = params.parse_uuid(report.get("callLogId"), "callLogId must be a UUID", errors.Invalid)
    org_id = params.parse_uuid(report.get("orgId"), "orgId must be a UUID", errors.Invalid)
    fields = report_fields(report)
    async with db.transaction(request.app[keys.DB]) as conn:
        if not await webhook_events.record_event(conn, "voice_agent", signature):
            return wire.json_response({"success": True, "duplicate": True})
        try:
            await calls.store_agent_report(conn, org_id, call_id, fields)
        except errors.NotFound:
            raise errors.NotFound("Call not found") from None
    return wire.json_response({"success": True, "callId": str(call_id)})


async def verify(request: web.Request) -> str:
    secret = request.app[keys.SETTINGS].voice_agent_secret
    if not secret:
        raise errors.NotConfigured(VOICE_AGENT_NOT_CONFIGURED)
    signature = request.headers.get(agent_protocol.SIGNATURE_HEADER)
    timestamp = request.headers.get(agent_protocol.TIMESTAMP_HEADER)
    if not agent_protocol.is_signed(secret, timestamp, signature, await request.read(), time.time()):
        raise errors.Unauthorized("Invalid voice agent signature")
    return signature


def report_fields(report: dict) -> dict:
    """The call log columns the report sets; a key it leaves out keeps its stored value."""
    fields: dict = {}
    if "transcript" in report:
        fields["transcript"] = transcript_of(report["transcript"])
        fields["transcription"] = "\n".join(f"{turn['role']}: {turn['content']}" for turn in fields["transcript"])
    if "summary" in report:
        fields["summary"] = params.optional_text(report, "summary")
    if "sentiment" in report:
        fields["sentiment"] = option_of(report["sentiment"], SENTIMENTS, "sentiment")
    if "sentimentScore" in report:
        fields["sentiment_score"] = number_in(report["sentimentScore"], -1, 1, "sentimentScore")
    if "score" in report:
        fields["score"] = number_in(report["score"], 0, 100, "score")
    if "recordingUrl" in report:
        fields["recording_url"] = url_of(report["recordingUrl"])
    if not fields:
        raise errors.Invalid("The report has none of: transcript, summary, sentiment, sentimentScore, score, "
                             "recordingUrl")
    return fields


def transcript_of(value) -> list[dict]:
    message = "transcript must be an array of {role: assistant|user, content: string}"
    if not isinstance(value, list):
        raise errors.Invalid(message)
    turns = []
    for turn in value:
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise errors.Invalid(message)
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns


def option_of(value, allowed: tuple[str, ...], field: str) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise errors.Invalid(f"{field} must be one of: {', '.join(allowed)}")
    return value


def number_in(value, low: float, high: float, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise errors.Invalid(f"{field} must be a number from {low} to {high}")
    return float(value)


def url_of(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise errors.Invalid("recordingUrl must be an http(s) URL")
    return value


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/webhook/voice-agent", agent_report)
