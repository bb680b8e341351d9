"""Campaign routes: CRUD, lead assignment, and status commands."""
from __future__ import annotations

from aiohttp import web

from outreach.http import execution, keys, params, wire
from outreach.http.auth import principal
from outreach.runtime import policy
from outreach.runtime.models import CampaignStatus
from outreach.storage import campaigns, db


def campaign_fields(body: dict, *, creating: bool) -> dict:
    """Validated columns from a create or update body; on update only keys present are applied."""
    fields: dict = {}
    if creating or "name" in body:
        message = "Name is required" if creating else "Name cannot be empty"
        fields["name"] = params.required_name(body, message=message)
    if creating:
        fields["channels"] = policy.DEFAULT_CHANNELS
        fields["channel_priority"] = policy.DEFAULT_CHANNEL_PRIORITY
    if "channels" in body and (body["channels"] or not creating):
        not_list, bad_item = ("Channels must be an array", "Invalid channel type") if creating else ("Invalid channels",) * 2
        fields["channels"] = policy.parse_channels(body["channels"], not_list, bad_item)
    if body.get("channelPriority"):
        fields["channel_priority"] = policy.parse_channels(body["channelPriority"], *("Invalid channelPriority",) * 2)
    elif not creating and "channelPriority" in body:
        fields["channel_priority"] = policy.DEFAULT_CHANNEL_PRIORITY
    if creating or "scriptId" in body:
        script_id = body.get("scriptId")
        fields["script_id"] = params.body_uuid(script_id, "scriptId") if script_id else None
    if creating or "scheduledAt" in body:
        fields["scheduled_at"] = params.optional_time(body, "scheduledAt")
    if creating or "settings" in body:
        fields["settings"] = params.optional_object(body, "settings")
    return fields


async def list_campaigns(request: web.Request) -> web.Response:
    page = params.page_from(request, 25)
    status = policy.parse_status_filter(CampaignStatus, request.query.get("status"))
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await campaigns.list_campaigns(conn, principal(request).org_id, page, status)
    return wire.json_response({"campaigns": [wire.to_wire(row) for row in rows],
                               "pagination": params.pagination(page, total)})


async def create_campaign(request: web.Request) -> web.Response:
    fields = campaign_fields(await params.read_json(request), creating=True)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await campaigns.create_campaign(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row), status=201)


async def get_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    org_id = principal(request).org_id
    async with db.connection(request.app[keys.DB]) as conn:
        row = await campaigns.get_campaign(conn, org_id, campaign_id)
        row["stats"] = await campaigns.lead_stats(conn, org_id, campaign_id)
    return wire.json_response(wire.to_wire(row))


async def update_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    body = await params.read_json(request)
    fields = campaign_fields(body, creating=False)
    org_id = principal(request).org_id
    async with db.transaction(request.app[keys.DB]) as conn:
        if "status" in body:
            current = await campaigns.get_campaign(conn, org_id, campaign_id, lock=True)
            wanted = policy.parse_enum(CampaignStatus, body["status"], "Invalid status")
            policy.check_status_edit(CampaignStatus(current["status"]), wanted)
            fields["status"] = wanted.value
        row = await campaigns.update_campaign(conn, org_id, campaign_id, fields)
    if fields.get("status") == CampaignStatus.PAUSED.value:
        await execution.tell_runtime_paused(request, campaign_id)
    return wire.json_response(wire.to_wire(row))


async def delete_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    async with db.transaction(request.app[keys.DB]) as conn:
        await campaigns.delete_campaign(conn, principal(request).org_id, campaign_id)
    return wire.json_response({"success": True})


async def list_campaign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    page = params.page_from(request, 100)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await campaigns.list_campaign_leads(conn, principal(request).org_id, campaign_id, page)
    return wire.json_response({"leads": [wire.to_wire(row) for row in rows], "total": total})


async def assign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    lead_ids = await lead_ids_from(request, campaign_id)
    async with db.transaction(request.app[keys.DB]) as conn:
        assigned = await campaigns.assign_leads(conn, principal(request).org_id, campaign_id, lead_ids)
    return wire.json_response({"success": True, "assigned": assigned})


async def unassign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    lead_ids = await lead_ids_from(request, campaign_id)
    async with db.transaction(request.app[keys.DB]) as conn:
        removed = await campaigns.unassign_leads(conn, principal(request).org_id, campaign_id, lead_ids)
    return wire.json_response({"success": True, "removed": removed})


async def lead_ids_from(request: web.Request, campaign_id) -> list:
    """The campaign is checked before the body, as the contract orders it."""
    async with db.connection(request.app[keys.DB]) as conn:
        await campaigns.get_campaign(conn, principal(request).org_id, campaign_id, missing="Campaign not found")
    body = await params.read_json(request)
    return params.uuid_list(body.get("leadIds"), "leadIds must be a non-empty array")


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
