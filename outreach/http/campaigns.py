"""Campaign routes: CRUD, lead assignment, and status commands."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, leads as lead_routes, params, schema, wire
from outreach.http.auth import principal
from outreach.runtime import policy
from outreach.runtime.models import CampaignStatus
from outreach.storage import campaigns, db


def not_given(value) -> bool:
    """JavaScript's falsy exactly, as the contract reads `channels || ["voice"]`: an empty array is given (and kept)."""
    return value is None or value is False or value == "" or (type(value) in (int, float) and value == 0)


CHANNEL = schema.Text(enum=policy.CHANNEL_NAMES)
CHANNELS = schema.Array(CHANNEL, distinct=True)
NAME = schema.Text(strip=True, min_length=1)
STATUSES = tuple(status.value for status in CampaignStatus)
LEAD_IDS_MESSAGE = "leadIds must be a non-empty array"

CAMPAIGN_CREATE = schema.Model("CampaignCreate", [
    schema.Field("name", NAME, required=True, message="Name is required"),
    schema.Field("channels", CHANNELS, empty=not_given, default=policy.DEFAULT_CHANNELS,
                 message={"type": "Channels must be an array", "item": "Invalid channel type"}),
    schema.Field("channelPriority", CHANNELS, empty=schema.falsy, default=policy.DEFAULT_CHANNEL_PRIORITY,
                 message="Invalid channelPriority"),
    schema.Field("scriptId", schema.Uuid(), empty=schema.falsy),
    schema.Field("scheduledAt", schema.DateTime(), empty=schema.blank),
    schema.Field("settings", schema.Object(), default={}),
])
# An update applies only the keys present; `status` goes through the transition rules (policy.check_status_edit).
CAMPAIGN_UPDATE = schema.Model("CampaignUpdate", [
    schema.Field("name", NAME, empty=schema.never, message="Name cannot be empty"),
    schema.Field("channels", CHANNELS, empty=schema.never, message="Invalid channels"),
    schema.Field("channelPriority", CHANNELS, empty=schema.falsy, default=policy.DEFAULT_CHANNEL_PRIORITY,
                 message="Invalid channelPriority"),
    schema.Field("scriptId", schema.Uuid(), empty=schema.falsy),
    schema.Field("scheduledAt", schema.DateTime(), empty=schema.blank),
    schema.Field("settings", schema.Object(), default={}),
    schema.Field("status", schema.Text(enum=STATUSES), empty=schema.never, message="Invalid status"),
], partial=True)
LEAD_IDS = schema.Model("LeadIds", [
    schema.Field("leadIds", schema.Array(schema.Uuid(), min_items=1), required=True,
                 message={"missing": LEAD_IDS_MESSAGE, "type": LEAD_IDS_MESSAGE, "length": LEAD_IDS_MESSAGE,
                          "item": lambda item: f"Invalid id in list: {item!r}"}),
])
LIST_QUERY = schema.Model("CampaignListQuery", [*params.page_fields(25), params.status_filter(CampaignStatus)],
                          text=True)
LEADS_QUERY = schema.Model("CampaignLeadsQuery", params.page_fields(100), text=True)

CAMPAIGN_KINDS = {
    "id": schema.Uuid(), "orgId": schema.Uuid(), "name": schema.Text(), "scriptId": schema.Uuid(),
    "voiceConfigId": schema.Uuid(), "status": schema.Text(enum=STATUSES), "channels": schema.Array(CHANNEL),
    "channelPriority": schema.Array(CHANNEL), "scheduledAt": schema.DateTime(), "settings": schema.Object(),
    "createdAt": schema.DateTime(), "updatedAt": schema.DateTime(),
    "statusReason": schema.Text(),  # why a run paused by itself (a limit, missing configuration); else null
}
NULLABLE = ("scriptId", "voiceConfigId", "scheduledAt", "statusReason")
CAMPAIGN = schema.reply("Campaign", CAMPAIGN_KINDS, NULLABLE)
STATS = schema.reply("CampaignLeadStats", {key: schema.Integer() for key in
                                           ("total", "contacted", "qualified", "converted", "rejected")})
CAMPAIGN_DETAIL = schema.reply("CampaignDetail", {**CAMPAIGN_KINDS, "stats": schema.Object(STATS)}, NULLABLE)
CAMPAIGN_LIST = schema.reply("CampaignList", {
    "campaigns": schema.Array(schema.Object(schema.reply("CampaignListItem",
                                                         {**CAMPAIGN_KINDS, "leadCount": schema.Integer()},
                                                         NULLABLE))),
    "pagination": schema.Object(params.PAGINATION),
})


@params.accepts(query=LIST_QUERY)
@params.answers(200, CAMPAIGN_LIST)
async def list_campaigns(request: web.Request) -> web.Response:
    values = params.query(request)
    page = params.page_of(values)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await campaigns.list_campaigns(conn, principal(request).org_id, page, values["status"])
    return wire.json_response({"campaigns": [wire.to_wire(row) for row in rows],
                               "pagination": params.pagination(page, total)})


@params.accepts(body=CAMPAIGN_CREATE)
@params.answers(201, CAMPAIGN)
async def create_campaign(request: web.Request) -> web.Response:
    fields = await params.body(request)
    policy.validate_windows(fields.get("settings"))
    async with db.connection(request.app[keys.DB]) as conn:
        row = await campaigns.create_campaign(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row), status=201)


@params.answers(200, CAMPAIGN_DETAIL)
async def get_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    org_id = principal(request).org_id
    async with db.connection(request.app[keys.DB]) as conn:
        row = await campaigns.get_campaign(conn, org_id, campaign_id)
        row["stats"] = await campaigns.lead_stats(conn, org_id, campaign_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=CAMPAIGN_UPDATE)
@params.answers(200, CAMPAIGN)
async def update_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    fields = await params.body(request)
    if "settings" in fields:
        policy.validate_windows(fields["settings"])
    wanted = fields.pop("status", None)
    org_id = principal(request).org_id
    async with db.transaction(request.app[keys.DB]) as conn:
        if wanted is not None:
            current = await campaigns.get_campaign(conn, org_id, campaign_id, lock=True)
            policy.check_status_edit(CampaignStatus(current["status"]), CampaignStatus(wanted))
            fields["status"] = wanted
        row = await campaigns.update_campaign(conn, org_id, campaign_id, fields)
    if fields.get("status") == CampaignStatus.PAUSED.value:
        await tell_runtime_paused(request, campaign_id)
    return wire.json_response(wire.to_wire(row))


@params.answers(200, schema.SUCCESS)
async def delete_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    async with db.transaction(request.app[keys.DB]) as conn:
        await campaigns.delete_campaign(conn, principal(request).org_id, campaign_id)
    return wire.json_response({"success": True})


@params.accepts(query=LEADS_QUERY)
@params.answers(200, schema.reply("CampaignLeads", {"leads": schema.Array(schema.Object(lead_routes.LEAD)),
                                                    "total": schema.Integer()}))
async def list_campaign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    page = params.page_of(params.query(request))
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await campaigns.list_campaign_leads(conn, principal(request).org_id, campaign_id, page)
    return wire.json_response({"leads": [wire.to_wire(row) for row in rows], "total": total})


@params.accepts(body=LEAD_IDS)
@params.answers(200, schema.reply("LeadsAssigned", {"success": schema.Boolean(), "assigned": schema.Integer()}))
async def assign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    lead_ids = await lead_ids_from(request, campaign_id)
    async with db.transaction(request.app[keys.DB]) as conn:
        assigned = await campaigns.assign_leads(conn, principal(request).org_id, campaign_id, lead_ids)
    return wire.json_response({"success": True, "assigned": assigned})


@params.accepts(body=LEAD_IDS)
@params.answers(200, schema.reply("LeadsUnassigned", {"success": schema.Boolean(), "removed": schema.Integer()}))
async def unassign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    lead_ids = await lead_ids_from(request, campaign_id)
    async with db.transaction(request.app[keys.DB]) as conn:
        removed = await campaigns.unassign_leads(conn, principal(request).org_id, campaign_id, lead_ids)
    return wire.json_response({"success": True, "removed": removed})


async def tell_runtime_paused(request: web.Request, campaign_id) -> None:
    """After the status is written: the runner stops starting sends before this returns."""
    handle = request.app.get(keys.RUNTIME)
    if handle is not None:
        await handle.pause(campaign_id)


async def lead_ids_from(request: web.Request, campaign_id) -> list:
    """The campaign is checked before the body, as the contract orders it."""
    async with db.connection(request.app[keys.DB]) as conn:
        await campaigns.get_campaign(conn, principal(request).org_id, campaign_id, missing="Campaign not found")
    return (await params.body(request))["lead_ids"]


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/campaigns"
    router.add_get(base, list_campaigns)
    router.add_post(base, create_campaign)
    router.add_get(base + "/{id}", get_campaign)
    router.add_patch(base + "/{id}", update_campaign)
    router.add_put(base + "/{id}", update_campaign)
    router.add_delete(base + "/{id}", delete_campaign)
    router.add_get(base + "/{id}/leads", list_campaign_leads)
    router.add_post(base + "/{id}/leads", assign_leads)
    router.add_delete(base + "/{id}/leads", unassign_leads)
