"""The voice agent's end-of-call report: transcript, summary, sentiment, score and recording, into the call log.

Refused unless signed with VOICE_AGENT_SECRET over its timestamp and body (runtime.agent_protocol),
with the timestamp within 300 s. A report already applied (the same signature: a retry or a replay
inside the tolerance) is acknowledged and changes nothing. The call is named by its log id and
organization, which the agent got with the call's configuration.
"""
from __future__ import annotations

import time
import uuid
from typing import Annotated

from aiohttp import web
from pydantic import ConfigDict, Field

from outreach.http import keys, params, validation, wire
from outreach.http.voice import VOICE_AGENT_NOT_CONFIGURED
from outreach.runtime import agent_protocol, errors
from outreach.storage import calls, db, replies, webhook_events

SENTIMENTS = ("positive", "negative", "neutral")
ROLES = ("assistant", "user")


class TranscriptTurn(validation.Model):
    role: validation.one_of(ROLES)
    content: validation.Text()


REPORT_KEYS = ("transcript", "summary", "sentiment", "sentimentScore", "score", "recordingUrl", "doNotCall")


class VoiceAgentReport(validation.Model):
    """The call log columns the report sets; a key it leaves out keeps its stored value."""

    model_config = ConfigDict(json_schema_extra={"description": f"At least one of: {', '.join(REPORT_KEYS)}."})
    partial = True
    call_log_id: validation.Uuid
    org_id: validation.Uuid
    transcript: validation.Array(TranscriptTurn) = None
    summary: Annotated[validation.Text(strip=True), validation.Empty(validation.blank)] = None
    sentiment: validation.one_of(SENTIMENTS) | None = None
    sentiment_score: validation.Number(minimum=-1, maximum=1) | None = None
    score: validation.Number(minimum=0, maximum=100) | None = None
    recording_url: Annotated[validation.Text(pattern=r"https?://[\s\S]*", format="uri"),
                             validation.Empty(validation.blank)] = None
    do_not_call: Annotated[validation.Boolean | None, Field(
        description="the lead asked not to be contacted again: its number is suppressed")] = None


class VoiceAgentSignature(validation.Model):
    textual = True
    timestamp: Annotated[str, Field(alias=agent_protocol.TIMESTAMP_HEADER, description="seconds since the epoch")]
    signature: Annotated[str, Field(alias=agent_protocol.SIGNATURE_HEADER,
                                    description="hex HMAC-SHA256 of `<timestamp>.<body>` under VOICE_AGENT_SECRET")]


class VoiceAgentReportStored(validation.Reply):
    success: bool
    call_id: uuid.UUID


@params.accepts(body=VoiceAgentReport, headers=VoiceAgentSignature)
@params.answers(200, VoiceAgentReportStored)
async def agent_report(request: web.Request) -> web.Response:
    signature = await verify(request)
    report = await params.body(request)
    call_id, org_id = report.pop("call_log_id"), report.pop("org_id")
    do_not_call = bool(report.pop("do_not_call", False))
    fields = report_fields(report, do_not_call)
    async with db.transaction(request.app[keys.DB]) as conn:
        if not await webhook_events.record_event(conn, "voice_agent", signature):
            return wire.json_response({"success": True, "duplicate": True})
        try:
            if fields:
                await calls.store_agent_report(conn, org_id, call_id, fields)
            elif not await calls.call_state(conn, org_id, call_id):
                raise errors.NotFound()
        except errors.NotFound:
            raise errors.NotFound("Call not found") from None
        lead = await replies.apply_call_report(conn, org_id, call_id, score=fields.get("score"),
                                               do_not_call=do_not_call)
    return wire.json_response({"success": True, "callId": str(call_id), **lead})


async def verify(request: web.Request) -> str:
    secret = request.app[keys.SETTINGS].voice_agent_secret
    if not secret:
        raise errors.NotConfigured(VOICE_AGENT_NOT_CONFIGURED)
    signature = request.headers.get(agent_protocol.SIGNATURE_HEADER)
    timestamp = request.headers.get(agent_protocol.TIMESTAMP_HEADER)
    if not agent_protocol.is_signed(secret, timestamp, signature, await request.read(), time.time()):
        raise errors.Unauthorized("Invalid voice agent signature")
    return signature


def report_fields(report: dict, do_not_call: bool = False) -> dict:
    """The transcript is also stored as text, one `role: content` line per turn."""
    if not report and not do_not_call:
        raise errors.Invalid(f"The report has none of: {', '.join(REPORT_KEYS)}")
    if "transcript" in report:
        report["transcription"] = "\n".join(f"{turn['role']}: {turn['content']}" for turn in report["transcript"])
    return report


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/webhook/voice-agent", agent_report)
