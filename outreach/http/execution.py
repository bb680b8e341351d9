"""Running campaigns: execute (wait or not), start, pause. The database status is written first."""
from __future__ import annotations

import uuid
from typing import Annotated

from aiohttp import web
from pydantic import Field

from outreach.http import campaigns as campaign_routes, keys, params, validation, wire
from outreach.http.auth import principal
from outreach.runtime import errors, policy, sequences, templates
from outreach.runtime.models import CampaignStatus
from outreach.storage import campaigns, db, events, runs, timers

COUNTS = ("total", "processed", "succeeded", "failed", "skipped", "unknown", "pending")


class ExecuteQuery(validation.Model):
    textual = True
    wait: Annotated[validation.TextBoolean, Field(
        description="false answers 202 at once with the progress so far and the websocket path")] = True


class RunProgress(validation.Reply):
    campaign_id: uuid.UUID
    status: str | None
    total: int
    processed: int
    succeeded: int
    failed: int
    skipped: int
    unknown: int
    pending: int
    results: list[dict]


class RunResult(validation.Reply):
    success: bool
    progress: RunProgress


def runtime(request: web.Request):
    return keys.required(request, keys.RUNTIME, "The campaign runtime is not running in this process")


@params.accepts(query=ExecuteQuery)
@params.answers(200, RunResult)
async def execute_campaign(request: web.Request) -> web.Response:
    campaign_id = params.path_id(request, message="Campaign not found")
    wait = params.query(request)["wait"]
    org_id = principal(request).org_id
    async with db.transaction(request.app[keys.DB]) as conn:
        campaign = await campaigns.get_campaign(conn, org_id, campaign_id, lock=True, missing="Campaign not found")
        if campaign["status"] == CampaignStatus.COMPLETED.value:
            raise errors.Invalid("Campaign is already completed")
        if not await runs.count_assigned(conn, campaign_id):
            raise errors.Invalid("No leads assigned to this campaign. Assign leads first.")
        handle = runtime(request)  # before the status is written: a 503 must leave the campaign as it was
        begins_at = await future_start(request, campaign)
        if begins_at and wait:
            raise errors.Invalid(f"Campaign is scheduled to begin at {begins_at.isoformat()}: start it (or execute "
                                 "with wait=false) to arm it, it begins by itself then")
        if campaign["status"] != CampaignStatus.ACTIVE.value:
            check_messages_written(request, campaign)
            await campaigns.update_campaign(conn, org_id, campaign_id, {"status": CampaignStatus.ACTIVE.value})
            begins_at = await arm(request, conn, campaign)
    if begins_at:
        await announce_start(request, campaign_id, begins_at)
        return await accepted(request, campaign_id)
    run = await handle.submit(campaign_id)  # the actor lookup is a blocking call to Ray: off the loop
    if not wait:
        return await accepted(request, campaign_id)
    summary = await run
    async with db.connection(request.app[keys.DB]) as conn:  # with what an earlier part of a resumed run ended
        latest = await runs.run_results(conn, campaign_id, RESULTS_KEPT)
    summary["results"] = [result_item(row) for row in reversed(latest)]  # oldest first, as the run reports them
    return wire.json_response({"success": True, "progress": progress_body(campaign_id, summary["counts"], summary)})


RESULTS_KEPT = 1000


def result_item(row: dict) -> dict:
    """One lead's outcome as the contract's results list has it (`error` only when there is one)."""
    item = {"leadId": str(row["lead_id"]), "leadName": templates.lead_name(row), "channel": row["channel"] or "none",
            "status": row["state"]}
    if row["error"]:
        item["error"] = row["error"]
    return item


def check_messages_written(request: web.Request, campaign: dict) -> None:
    """A 400 naming the channel and both fixes, before any status is written (policy.check_messages_written)."""
    policy.check_messages_written(campaign, drafts_on=bool(request.app[keys.SETTINGS].openrouter_api_key))


async def accepted(request: web.Request, campaign_id) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        counts = await runs.run_counts(conn, campaign_id)
    body = {"success": True, "progress": progress_body(campaign_id, counts, {"status": "active"}),
            "websocket": f"/api/dashboard/campaigns/{campaign_id}/progress"}
    return wire.json_response(body, status=202)


def progress_body(campaign_id, counts: dict, summary: dict) -> dict:
    """The contract's progress (its `failed` counts every lead not sent), plus our finer counts."""
    body = {"campaignId": str(campaign_id), "status": summary.get("status"), "total": counts["total"],
            "processed": counts["processed"], "succeeded": counts["succeeded"],
            "failed": counts["processed"] - counts["succeeded"], "skipped": counts["skipped"],
            "unknown": counts["unknown"], "pending": counts["pending"], "results": summary.get("results", [])}
    if summary.get("reason"):
        body["reason"] = summary["reason"]
    return body


@params.answers(200, campaign_routes.Campaign)
async def start_campaign(request: web.Request) -> web.Response:
    row = await change_status(request, CampaignStatus.ACTIVE, policy.check_start,
                              ready=lambda campaign: check_messages_written(request, campaign))
    handle = request.app.get(keys.RUNTIME)
    if row["begins_at"]:  # armed: the scheduler wakes it then
        await announce_start(request, row["id"], row["begins_at"])
    elif handle is not None:
        await handle.submit(row["id"])  # runs in the background; the feed reports it
    return wire.json_response(wire.to_wire({key: value for key, value in row.items() if key != "begins_at"}))


@params.answers(200, campaign_routes.Campaign)
async def pause_campaign(request: web.Request) -> web.Response:
    row = await change_status(request, CampaignStatus.PAUSED, policy.check_pause)
    await campaign_routes.tell_runtime_paused(request, row["id"])
    return wire.json_response(wire.to_wire(row))


async def change_status(request: web.Request, wanted: CampaignStatus, check, ready=None) -> dict:
    """`check` the transition, then `ready(campaign)` whether it can run, before writing the status."""
    campaign_id = params.path_id(request)
    org_id = principal(request).org_id
    async with db.transaction(request.app[keys.DB]) as conn:
        current = await campaigns.get_campaign(conn, org_id, campaign_id, lock=True)
        check(CampaignStatus(current["status"]))
        if ready is not None:
            ready(current)
        row = await campaigns.update_campaign(conn, org_id, campaign_id, {"status": wanted.value})
        if wanted is CampaignStatus.ACTIVE:
            row["begins_at"] = await arm(request, conn, current)
        return row


async def future_start(request: web.Request, campaign: dict):
    """The campaign's scheduledAt when it is still ahead (by the clock), else None."""
    now = await campaign_routes.clock_of(request).now()
    scheduled = campaign.get("scheduled_at")
    return scheduled if scheduled is not None and scheduled > now else None


async def arm(request: web.Request, conn, campaign: dict):
    """Set the timers of a campaign that starts (or resumes): its leads not yet started begin at its scheduledAt
    when that is ahead, plus their first step's delay; returns that future start, or None when it runs now."""
    now = await campaign_routes.clock_of(request).now()
    begins_at = await future_start(request, campaign)
    starts_at = begins_at or now
    steps = sequences.steps_or_one_shot(campaign["settings"])
    wake_at = starts_at if begins_at else now + timers.RUN_LEASE  # running now; the scheduler is the safety net
    await timers.arm_campaign(conn, campaign["id"], wake_at, sequences.first_due(now, starts_at, steps),
                              rescheduled=begins_at is not None)
    return begins_at


async def announce_start(request: web.Request, campaign_id, begins_at) -> None:
    """The feed says when an armed campaign begins (nothing runs before)."""
    async with db.connection(request.app[keys.DB]) as conn:
        counts = await runs.run_counts(conn, campaign_id)
    await events.publish(request.app[keys.REDIS], campaign_id, [
        {"type": "status", "status": "active"},
        {"type": "scheduled", "dueAt": begins_at.isoformat(), "leads": counts["pending"],
         **{key: counts[key] for key in COUNTS}}])


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/campaigns/{id}"
    router.add_post(base + "/execute", execute_campaign)
    router.add_post(base + "/start", start_campaign)
    router.add_post(base + "/pause", pause_campaign)
