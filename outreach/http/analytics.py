"""The analytics route: org-wide totals, rates, a 7-day chart, top campaigns and recent activity."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal
from outreach.storage import analytics, db

# Statuses that count toward each rate: a reply implies the message was delivered and read.
DELIVERED = ("delivered", "read", "replied")
OPENED = ("read", "replied")
REPLIED = ("replied",)
# Activity labels per channel: (sent, received, failed).
MESSAGE_ACTIONS = {
    "telegram": ("Sent message", "Received message", "Message failed"),
    "email": ("Sent email", "Received email", "Email failed"),
    "voice": ("Called", "Received call", "Call failed"),
}


def percent(part: int, whole: int) -> int:
    """round(100 * part / whole) with halves rounded up, as JavaScript's Math.round; 0 of nothing is 0."""
    return (200 * part + whole) // (2 * whole) if whole else 0


def voice_summary(rows: list[dict]) -> dict:
    total = sum(row["count"] for row in rows)
    completed = next((row for row in rows if row["status"] == "completed"), None)
    return {
        "total": total,
        "avgDuration": completed["avg_duration"] if completed else 0,
        "completionRate": percent(completed["count"] if completed else 0, total),
        "byStatus": [{"status": row["status"], "count": row["count"]} for row in rows],
    }


def channel_summary(channel: str, rows: list[dict], rates: dict[str, tuple[str, ...]]) -> dict:
    by_status = [wire.to_wire(row) for row in rows if row["channel"] == channel]
    total = sum(item["count"] for item in by_status)
    summary = {"total": total}
    for key, statuses in rates.items():
        summary[key] = percent(sum(item["count"] for item in by_status if item["status"] in statuses), total)
    summary["byStatus"] = by_status
    return summary


def top_campaign(row: dict) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "channels": row["channels"],
        "status": row["status"],
        "contactsReached": row["contacts_reached"],
        "responseRate": min(100, percent(row["responses"], row["contacts_reached"])),
    }


def lead_statuses(rows: list[dict]) -> dict:
    return {"total": sum(row["count"] for row in rows), "breakdown": rows}


def activity_action(item: dict) -> str:
    if item["kind"] == "call":
        return "Called" if item["status"] == "completed" else f"Call {item['status']}"
    sent, received, failed = MESSAGE_ACTIONS[item["channel"]]
    if item["status"] == "failed":
        return failed
    return received if item["direction"] == "inbound" else sent


def activity_item(item: dict, leads: dict) -> dict:
    lead = leads.get(item["lead_id"]) or {}
    name = f"{lead.get('first_name') or ''} {lead.get('last_name') or ''}".strip()
    return {
        "id": item["id"],
        "channel": item["channel"],
        "action": activity_action(item),
        "leadName": name or item["to_number"] or "Unknown",
        "leadPhone": lead.get("phone") or item["to_number"] or None,
        "time": item["time"],
        "linkType": "call" if item["kind"] == "call" else "message",
    }


def analytics_body(parts: dict) -> dict:
    messages = parts["messages_by_status"]
    return {
        "voice": voice_summary(parts["calls_by_status"]),
        "telegram": channel_summary("telegram", messages, {"deliveredRate": DELIVERED, "replyRate": REPLIED}),
        "email": channel_summary("email", messages, {"openRate": OPENED, "replyRate": REPLIED}),
        "activityChart": parts["activity_chart"],
        "topCampaigns": [top_campaign(row) for row in parts["top_campaigns"]],
        "leadStatuses": lead_statuses(parts["leads_by_status"]),
        "recentActivity": [activity_item(item, parts["leads"]) for item in parts["recent_activity"]],
    }


class Analytics(validation.Reply):
    voice: dict
    telegram: dict
    email: dict
    lead_statuses: dict
    activity_chart: list[dict]
    top_campaigns: list[dict]
    recent_activity: list[dict]


@params.answers(200, Analytics)
async def get_analytics(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        parts = await analytics.read_analytics(conn, principal(request).org_id)
    return wire.json_response(analytics_body(parts))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/analytics", get_analytics)
