"""Call log routes: the org's calls, newest first, and one call in full."""
from __future__ import annotations

import datetime
import uuid

from aiohttp import web

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal
from outreach.storage import calls, db

STATUSES = ("completed", "failed", "no_answer", "voicemail", "busy", "in_progress")
SENTIMENTS = ("positive", "negative", "neutral")


class CallListQuery(params.PageQuery):
    limit: params.PageLimit = 50


class CallSummary(validation.Reply):
    id: uuid.UUID
    direction: validation.one_of(("outbound", "inbound"))
    status: validation.one_of(STATUSES)
    from_number: str | None
    to_number: str | None
    duration: int | None
    started_at: datetime.datetime
    summary: str | None
    sentiment: validation.one_of(SENTIMENTS) | None


class Call(CallSummary):
    org_id: uuid.UUID
    lead_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    phone_number_id: uuid.UUID | None
    ended_at: datetime.datetime | None
    transcription: str | None
    transcript: list[dict]
    sentiment_score: float | None
    score: float | None
    recording_url: str | None
    metadata: dict


class CallList(validation.Reply):
    calls: list[CallSummary]
    pagination: params.Pagination


@params.accepts(query=CallListQuery)
@params.answers(200, CallList)
async def list_calls(request: web.Request) -> web.Response:
    page = params.page_of(params.query(request))
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await calls.list_calls(conn, principal(request).org_id, page)
    return wire.json_response({"calls": [wire.to_wire(row) for row in rows],
                               "pagination": params.pagination(page, total)})


@params.answers(200, Call)
async def get_call(request: web.Request) -> web.Response:
    call_id = params.path_id(request)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await calls.get_call(conn, principal(request).org_id, call_id)
    return wire.json_response(wire.to_wire(row))


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/calls"
    router.add_get(base, list_calls)
    router.add_get(base + "/{id}", get_call)
