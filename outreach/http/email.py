"""Email routes: the org's email conversation log."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.runtime.models import Channel
from outreach.storage import db, messages


def email_item(row: dict) -> dict:
    """The dashboard's "To" column reads metadata.to; the senders record toEmail. Give it both."""
    item = wire.to_wire(row)
    metadata = item["metadata"]
    if isinstance(metadata, dict) and "toEmail" in metadata and "to" not in metadata:
        item["metadata"] = {**metadata, "to": metadata["toEmail"]}
    return item


def lead_filter(request: web.Request):
    raw = request.query.get("leadId")
    return params.body_uuid(raw, "leadId") if raw else None


async def list_email_messages(request: web.Request) -> web.Response:
    page = params.page_from(request, 50)
    lead_id = lead_filter(request)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await messages.list_messages(
            conn, principal(request).org_id, Channel.EMAIL, page, lead_id=lead_id
        )
    return wire.json_response({"messages": [email_item(row) for row in rows], "total": total,
                               "page": page.number, "limit": page.limit})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/email/messages", list_email_messages)
