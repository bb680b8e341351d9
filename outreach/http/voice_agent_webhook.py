"""The voice agent's end-of-call report: transcript, summary, sentiment, score and recording, into the call log.

Refused unless signed with VOICE_AGENT_SECRET over its timestamp and body (runtime.agent_protocol),
with the timestamp within 300 s. A report already applied (the same signature: a retry or a replay
inside the tolerance) is acknowledged and changes nothing. The call is named by its log id and
organization, which the agent got with the call's configuration.
"""
from __future__ import annotations

import time

from aiohttp import web

from outreach.http import keys, params, schema, wire
from outreach.http.voice import VOICE_AGENT_NOT_CONFIGURED
from outreach.runtime import agent_protocol, errors
from outreach.storage import calls, db, webhook_events

SENTIMENTS = ("positive", "negative", "neutral")
ROLES = ("assistant", "user")
TRANSCRIPT_MESSAGE = "transcript must be an array of {role: assistant|user, content: string}"
TURN = schema.Model("TranscriptTurn", [
    schema.Field("role", schema.Text(enum=ROLES), required=True, empty=schema.never),
    schema.Field("content", schema.Text(), required=True, empty=schema.never),
])
REPORT_KEYS = ("transcript", "summary", "sentiment", "sentimentScore", "score", "recordingUrl")
# The call log columns the report sets; a key it leaves out keeps its stored value.
REPORT = schema.Model("VoiceAgentReport", [
    schema.Field("callLogId", schema.Uuid(), required=True, empty=schema.never, message="callLogId must be a UUID"),
    schema.Field("orgId", schema.Uuid(), required=True, empty=schema.never, message="orgId must be a UUID"),
    schema.Field("transcript", schema.Array(schema.Object(TURN)), empty=schema.never, message=TRANSCRIPT_MESSAGE),
    schema.Field("summary", schema.Text(strip=True), empty=schema.blank),
    schema.Field("sentiment", schema.Text(enum=SENTIMENTS)),
    schema.Field("sentimentScore", schema.Number(minimum=-1, maximum=1)),
    schema.Field("score", schema.Number(minimum=0, maximum=100)),
    schema.Field("recordingUrl", schema.Text(pattern=r"https?://[\s\S]*", format="uri"), empty=schema.blank,
                 message="recordingUrl must be an http(s) URL"),
], partial=True, description=f"At least one of: {', '.join(REPORT_KEYS)}.")
SIGNATURE = schema.Model("VoiceAgentSignature", [
    schema.Field(agent_protocol.TIMESTAMP_HEADER, schema.Text(), required=True, description="seconds since the epoch"),
    schema.Field(agent_protocol.SIGNATURE_HEADER, schema.Text(), required=True,
                 description="hex HMAC-SHA256 of `<timestamp>.<body>` under VOICE_AGENT_SECRET"),
], text=True)


@params.accepts(body=REPORT, headers=SIGNATURE)
@params.answers(200, schema.reply("VoiceAgentReportStored", {"success": schema.Boolean(), "callId": schema.Uuid()}))
async def agent_report(request: web.Request) -> web.Response:
    signature = await verify(request)
    report = await params.body(request)
    call_id, org_id = report.pop("call_log_id"), report.pop("org_id")
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
    """The transcript is also stored as text, one `role: content` line per turn."""
    if not report:
        raise errors.Invalid(f"The report has none of: {', '.join(REPORT_KEYS)}")
    if "transcript" in report:
        report["transcription"] = "\n".join(f"{turn['role']}: {turn['content']}" for turn in report["transcript"])
    return report


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/webhook/voice-agent", agent_report)
