"""Campaign routes: CRUD, lead assignment, and status commands."""
from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from aiohttp import web

from outreach.http import keys, leads as lead_routes, params, validation, wire
from outreach.http.auth import principal
from outreach.runtime import errors, optout, policy, sequences
from outreach.runtime.models import CampaignStatus
from outreach.storage import campaigns, clock, db, timers


def not_given(value) -> bool:
    """JavaScript's falsy exactly, as the contract reads `channels || ["voice"]`: an empty array is given (and kept)."""
    return value is None or value is False or value == "" or (type(value) in (int, float) and value == 0)


Channel = validation.one_of(policy.CHANNEL_NAMES)
Channels = validation.Array(Channel, distinct=True)
Name = validation.Text(strip=True, min_length=1)
STATUSES = tuple(status.value for status in CampaignStatus)
Status = validation.one_of(STATUSES)


class CampaignCreate(validation.Model):
    name: Annotated[Name, validation.Required()]
    channels: Annotated[Channels, validation.Empty(not_given), validation.default(policy.DEFAULT_CHANNELS)]
    channel_priority: Annotated[Channels, validation.Empty(validation.falsy),
                                validation.default(policy.DEFAULT_CHANNEL_PRIORITY)]
    script_id: Annotated[validation.Uuid, validation.Empty(validation.falsy)] = None
    scheduled_at: Annotated[validation.DateTime, validation.Empty(validation.blank)] = None
    settings: Annotated[validation.Object, validation.Empty(), validation.default({})]


class CampaignUpdate(validation.Model):
    """An update applies only the keys present; `status` goes through the transition rules
    (policy.check_status_edit)."""

    partial = True
    name: Name = None
    channels: Channels = None
    channel_priority: Annotated[Channels, validation.Empty(validation.falsy),
                                validation.default(policy.DEFAULT_CHANNEL_PRIORITY)]
    script_id: Annotated[validation.Uuid, validation.Empty(validation.falsy)] = None
    scheduled_at: Annotated[validation.DateTime, validation.Empty(validation.blank)] = None
    settings: Annotated[validation.Object, validation.Empty(), validation.default({})]
    status: Status = None


class LeadIds(validation.Model):
    lead_ids: Annotated[validation.Array(validation.Uuid, min_items=1), validation.Required()]


class CampaignListQuery(params.PageQuery):
    status: params.status_choice(CampaignStatus) = None


class CampaignLeadsQuery(params.PageQuery):
    limit: params.PageLimit = 100


class Campaign(validation.Reply):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    script_id: uuid.UUID | None
    voice_config_id: uuid.UUID | None
    status: Status
    channels: list[Channel]
    channel_priority: list[Channel]
    scheduled_at: datetime.datetime | None
    settings: dict
    created_at: datetime.datetime
    updated_at: datetime.datetime
    status_reason: str | None  # why a run paused by itself (a limit, missing configuration); else null


class CampaignLeadStats(validation.Reply):
    total: int
    contacted: int
    qualified: int
    converted: int
    rejected: int


class CampaignStepStats(validation.Reply):
    step: int
    channel: validation.one_of(sequences.STEP_CHANNELS)
    sent: int
    failed: int
    waiting: int
    next_due_at: datetime.datetime | None


class CampaignDetail(Campaign):
    """`steps`: per step of settings.sequence (one step without it); `nextDueAt`: when the earliest waiting lead
    comes due (null: a lead is due now, or none waits)."""

    stats: CampaignLeadStats
    steps: list[CampaignStepStats]
    next_due_at: datetime.datetime | None


class CampaignListItem(Campaign):
    lead_count: int


class CampaignList(validation.Reply):
    campaigns: list[CampaignListItem]
    pagination: params.Pagination


class CampaignLeads(validation.Reply):
    leads: list[lead_routes.Lead]
    total: int


class LeadsAssigned(validation.Reply):
    success: bool
    assigned: int


class LeadsUnassigned(validation.Reply):
    success: bool
    removed: int



@params.accepts(query=CampaignListQuery)
@params.answers(200, CampaignList)
async def list_campaigns(request: web.Request) -> web.Response:
    values = params.query(request)
    page = params.page_of(values)
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await campaigns.list_campaigns(conn, principal(request).org_id, page, values["status"])
    return wire.json_response({"campaigns": [wire.to_wire(row) for row in rows],
                               "pagination": params.pagination(page, total)})


@params.accepts(body=CampaignCreate)
@params.answers(201, Campaign)
async def create_campaign(request: web.Request) -> web.Response:
    fields = await params.body(request)
    sequences.validate_settings(fields.get("settings"))
    policy.validate_windows(fields.get("settings"))
    optout.validate_audience(fields.get("settings"))
    sequences.check_scheduled_at(await clock_of(request).now(), fields.get("scheduled_at"))
    async with db.connection(request.app[keys.DB]) as conn:
        row = await campaigns.create_campaign(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row), status=201)


@params.answers(200, CampaignDetail)
async def get_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    org_id = principal(request).org_id
    async with db.connection(request.app[keys.DB]) as conn:
        row = await campaigns.get_campaign(conn, org_id, campaign_id)
        row["stats"] = await campaigns.lead_stats(conn, org_id, campaign_id)
        steps = sequences.steps_or_one_shot(row["settings"])
        row["steps"] = [{**stats, "channel": step.channel}
                        for stats, step in zip(await timers.step_stats(conn, campaign_id, len(steps)), steps)]
        row["next_due_at"] = await timers.next_lead_due(conn, campaign_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=CampaignUpdate)
@params.answers(200, Campaign)
async def update_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    fields = await params.body(request)
    if "settings" in fields:
        sequences.validate_settings(fields["settings"])
        policy.validate_windows(fields["settings"])
        optout.validate_audience(fields["settings"])
    wanted = fields.pop("status", None)
    org_id = principal(request).org_id
    if "scheduled_at" in fields:
        sequences.check_scheduled_at(await clock_of(request).now(), fields["scheduled_at"])
    async with db.transaction(request.app[keys.DB]) as conn:
        if wanted is not None or "scheduled_at" in fields:
            current = await campaigns.get_campaign(conn, org_id, campaign_id, lock=True)
            check_reschedule(current, fields)
        if wanted is not None:
            policy.check_status_edit(CampaignStatus(current["status"]), CampaignStatus(wanted))
            fields["status"] = wanted
        row = await campaigns.update_campaign(conn, org_id, campaign_id, fields)
    if fields.get("status") == CampaignStatus.PAUSED.value:
        await tell_runtime_paused(request, campaign_id)
    return wire.json_response(wire.to_wire(row))


def check_reschedule(current: dict, fields: dict) -> None:
    """An active campaign's timers were set from its scheduledAt when it started: moving it is a pause, the edit,
    then a start (which sets them again), so a wake-up never follows a date that is no longer the campaign's."""
    if ("scheduled_at" in fields and fields["scheduled_at"] != current["scheduled_at"]
            and current["status"] == CampaignStatus.ACTIVE.value):
        raise errors.Conflict("Campaign is active: pause it to change scheduledAt, then start it again")


@params.answers(200, validation.Success)
async def delete_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request)
    async with db.transaction(request.app[keys.DB]) as conn:
        await campaigns.delete_campaign(conn, principal(request).org_id, campaign_id)
    return wire.json_response({"success": True})


@params.accepts(query=CampaignLeadsQuery)
@params.answers(200, CampaignLeads)
async def list_campaign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    page = params.page_of(params.query(request))
    async with db.connection(request.app[keys.DB]) as conn:
        rows, total = await campaigns.list_campaign_leads(conn, principal(request).org_id, campaign_id, page)
    return wire.json_response({"leads": [wire.to_wire(row) for row in rows], "total": total})


@params.accepts(body=LeadIds)
@params.answers(200, LeadsAssigned)
async def assign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    lead_ids = await lead_ids_from(request, campaign_id)
    org_id = principal(request).org_id
    async with db.transaction(request.app[keys.DB]) as conn:
        assigned = await campaigns.assign_leads(conn, org_id, campaign_id, lead_ids)
        campaign = await campaigns.get_campaign(conn, org_id, campaign_id)
        if campaign["status"] == CampaignStatus.ACTIVE.value:  # a running sequence takes them in by itself
            now = await clock_of(request).now()
            scheduled = campaign["scheduled_at"]
            starts_at = scheduled if scheduled is not None and scheduled > now else now  # armed: not before it
            first_due = sequences.first_due(now, starts_at, sequences.steps_or_one_shot(campaign["settings"]))
            await timers.wake_for_new_leads(conn, campaign_id, first_due or now)
    return wire.json_response({"success": True, "assigned": assigned})


@params.accepts(body=LeadIds)
@params.answers(200, LeadsUnassigned)
async def unassign_leads(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    lead_ids = await lead_ids_from(request, campaign_id)
    async with db.transaction(request.app[keys.DB]) as conn:
        removed = await campaigns.unassign_leads(conn, principal(request).org_id, campaign_id, lead_ids)
    return wire.json_response({"success": True, "removed": removed})


def clock_of(request: web.Request):
    """The clock "is it due" is decided by: the system's (tests: one shared through Redis with the actors)."""
    return clock.clock_for(request.app[keys.SETTINGS].shared_test_clock, request.app[keys.REDIS])


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
