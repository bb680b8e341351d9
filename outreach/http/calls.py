"""Call log routes: the org's calls, newest first, and one call in full."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, schema, wire
from outreach.http.auth import principal
from outreach.storage import calls, db

LIST_QUERY = schema.Model("CallListQuery", params.page_fields(50), text=True)
STATUSES = ("completed", "failed", "no_answer", "voicemail", "busy", "in_progress")
SENTIMENTS = ("positive", "negative", "neutral")
SUMMARY_KINDS = {
    "id": schema.Uuid(), "direction": schema.Text(enum=("outbound", "inbound")), "status": schema.Text(enum=STATUSES),
    "fromNumber": schema.Text(), "toNumber": schema.Text(), "duration": schema.Integer(),
    "startedAt": schema.DateTime(), "summary": schema.Text(), "sentiment": schema.Text(enum=SENTIMENTS),
}
CALL_SUMMARY = schema.reply("CallSummary", SUMMARY_KINDS,
                            ("fromNumber", "toNumber", "duration", "summary", "sentiment"))
CALL = schema.reply("Call", {
    **SUMMARY_KINDS, "orgId": schema.Uuid(), "leadId": schema.Uuid(), "campaignId": schema.Uuid(),
    "phoneNumberId": schema.Uuid(), "endedAt": schema.DateTime(), "transcription": schema.Text(),
    "transcript": schema.Array(schema.Object()), "sentimentScore": schema.Number(), "score": schema.Number(),
    "recordingUrl": schema.Text(), "metadata": schema.Object(),
}, ("fromNumber", "toNumber", "duration", "summary", "sentiment", "leadId", "campaignId", "phoneNumberId", "endedAt",
    "transcription", "sentimentScore", "score", "recordingUrl"))


@params.accepts(query=LIST_QUERY)
@params.answers(200, schema.reply("CallList", {"calls": schema.Array(schema.Object(CALL_SUMMARY)),
                                               "pagination": schema.Object(params.PAGINATION)}))
async def list_calls(request: web.Request) -> web.Response:
    page = params.page_of(params.query(request))
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await calls.list_calls(conn, principal(request).org_id, page)
    return wire.json_response({"calls": [wire.to_wire(row) for row in rows],
                               "pagination": params.pagination(page, total)})


@params.answers(200, CALL)
async def get_call(request: web.Request) -> web.Response:
    call_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await calls.get_call(conn, principal(request).org_id, call_id)
    return wire.json_response(wire.to_wire(row))


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/calls"
    router.add_get(base, list_calls)
    router.add_get(base + "/{id}", get_call)
