"""CampaignRunner: executes one campaign's pending leads concurrently, durably, and pausably.

Each lead runs as a small coroutine (choose a channel, write the attempt, send, record), while the
database work of many leads is coalesced by batchers: one statement writes a batch's attempts (with
their usage reservation), one records a batch's outcomes, one Redis round trip publishes its events.
The database status is the source of truth: a run stops claiming when the campaign is no longer
`active`, and `pause()` returns only once no new attempt can start.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
import uuid

from outreach.actors.batcher import Batcher, InFlight
from outreach.actors.outcomes import (
    PROVIDER_ERROR, UNRECORDED, Attempted, Ended, OutcomeBatch, counts_of, end_events, ends_the_step, flatten,
    latency_summary, result_of, with_attempt,
)
from outreach.runtime import errors, policy, sequences, templates
from outreach.runtime.ports import ChannelDispatcher, Clock, EventSink, RunStore, SendJob, SendResult, SystemClock

log = logging.getLogger(__name__)
FIRST_CURSOR = (datetime.datetime.min, uuid.UUID(int=0))  # before every (due_at, lead_id); min is '-infinity'
PAUSED = "paused"
IDLE_CLAIM_SECONDS = 0.05  # while sends are in flight and no lead is due, how often the run looks for new due ones
REMOTE_CHANNELS = ("telegram", "voice")  # sent by another actor: a failure there leaves the outcome unknown
PUBLISH_TIMEOUT_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class RunnerOptions:
    batch_size: int = 500
    max_in_flight: int = 4000  # leads claimed and not yet recorded
    # Sends decided (attempt written) and not yet answered, per channel. An email's slot is held from its attempt's
    # write (a batch: ~0.1 s) to its answer, so 2,000 keep a 50 ms provider within 10% of a 0 ms one (bench/execute.py)
    concurrency: dict = dataclasses.field(default_factory=lambda: {"email": 2000, "telegram": 8, "voice": 8})
    flush_delay: float = 0.005
    concurrent_flushes: int = 2  # of attempts, and of outcomes: the actor's pool has 4 connections
    max_results_kept: int = 1000


class CampaignRunner:
    def __init__(self, campaign_id, store: RunStore, events: EventSink, dispatchers: dict[str, ChannelDispatcher],
                 options: RunnerOptions | None = None, drafter=None, clock: Clock | None = None):
        self.campaign_id = str(campaign_id)
        self.store = store
        self.events = events
        self.dispatchers = dispatchers
        self.options = options or RunnerOptions()
        self.drafter = drafter
        self.clock = clock or SystemClock()
        self._task: asyncio.Task | None = None
        self._paused = False
        self._finishing = False  # the run stopped claiming: a new start must not attach to it
        self._attempt_writes = InFlight()  # attempt batches being written (several at once)

    # --- commands -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        """The run in progress, or a new one: concurrent callers attach to the same run.

        A run that was paused may still be finishing its in-flight sends: a new run is queued behind it,
        so a `start` right after a `pause` is never swallowed by the run that is stopping.
        """
        if self._task is None or self._task.done():
            self._paused = False
            self._task = asyncio.create_task(self._run())
        elif self._paused or self._finishing:  # a lead that came due meanwhile needs a run that still claims
            self._finishing = False
            self._task = asyncio.create_task(self._run_after(self._task))
        return self._task

    async def _run_after(self, stopping: asyncio.Task) -> dict:
        await asyncio.gather(stopping, return_exceptions=True)
        self._paused = False
        return await self._run()

    async def run(self) -> dict:
        """Run until no pending lead is left (or the campaign stops being active)."""
        return await asyncio.shield(self.start())

    async def pause(self) -> None:
        """Returns once no new attempt can start; sends already started finish and are recorded."""
        self._paused = True  # from here no attempt batch starts writing; those already writing finish
        await self._attempt_writes.wait_idle()

    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- the run ---------------------------------------------------------------------------------

    async def _run(self) -> dict:
        campaign = await self.store.load_campaign()
        if campaign["status"] != "active":
            return {"status": campaign["status"], "counts": await self.store.run_counts(), "results": []}
        self._setup(campaign)
        self._finishing = False
        await self.store.reconcile()
        self.counts = await self.store.run_counts()
        await self._publish([{"type": "status", "status": "running"}, self._progress_event()])
        try:
            await self._process_all()
        except Exception as exc:
            await self._abandon(exc)
            raise
        self._finishing = True
        return await self._finish()

    async def _abandon(self, exc: Exception) -> None:
        """The run failed (database gone, ...): in-flight leads go back to pending and the campaign is
        paused with the reason, so a `start` retries it; nothing stays `active` with no one running it."""
        log.exception("campaign %s: run failed", self.campaign_id)
        self._paused, reason = True, f"Run failed: {exc}"  # attempt batches still queued write nothing now
        try:
            await self.store.reconcile()
            await self.store.finish_campaign("paused", reason)
            await self._publish([{"type": "status", "status": "paused", "reason": reason},
                                 {"type": "done", "status": "paused", "reason": reason, **self._count_fields()}])
        except Exception:  # the store itself may be what failed; the next run reconciles
            log.exception("campaign %s: could not record the failed run", self.campaign_id)

    def _setup(self, campaign: dict) -> None:
        self.campaign = campaign
        self.order = policy.ordered_channels(campaign["channels"] or [], campaign["channel_priority"] or [])
        self.window = policy.calling_window(campaign["settings"])
        self.steps = sequences.steps_or_one_shot(campaign["settings"])
        self.blocked: dict[str, str] = {}
        self.results: list[dict] = []
        self.latencies: list[float] = []  # seconds from claim to recorded outcome, per lead
        self.slots = {name: asyncio.Semaphore(self.options.concurrency.get(name, 4)) for name in policy.CHANNEL_NAMES}
        self.attempts = Batcher(self._flush_attempts, self.options.batch_size, self.options.flush_delay,
                                self.options.concurrent_flushes)
        self.outcomes = Batcher(self._flush_outcomes, self.options.batch_size, self.options.flush_delay,
                                self.options.concurrent_flushes)
        self.releases = Batcher(self._flush_releases, self.options.batch_size, self.options.flush_delay)

    async def _process_all(self) -> None:
        cursor, in_flight = FIRST_CURSOR, set()
        while not self._paused:
            if await self.store.campaign_status() != "active":
                self._paused = True
                break
            self.now = await self.clock.now()
            leads = await self.store.claim_leads(cursor, self.options.batch_size, self.now)
            if not leads and not in_flight:
                break
            if not leads:  # leads come due meanwhile (and those in flight may, at a step without delay): look again
                done, in_flight = await asyncio.wait(in_flight, timeout=IDLE_CLAIM_SECONDS,
                                                     return_when=asyncio.FIRST_COMPLETED)
                raise_failures(done, in_flight)
                continue
            cursor = (leads[-1]["due_at"], leads[-1]["id"])
            claimed_at = time.monotonic()
            for lead in leads:
                lead["claimed_at"] = claimed_at
            in_flight.update(asyncio.create_task(self._process_lead(lead)) for lead in leads)
            while len(in_flight) >= self.options.max_in_flight:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                raise_failures(done, in_flight)
        if in_flight:
            done, _ = await asyncio.wait(in_flight)
            raise_failures(done, in_flight)
        await self.attempts.drain()
        await self.outcomes.drain()

    async def _finish(self) -> dict:
        counts = await self.store.run_counts()
        scheduled = None
        if self._paused or await self.store.campaign_status() != "active":
            status = await self.store.campaign_status() or "paused"
            reason = None
        elif counts["in_progress"] or ((due := counts["pending"] and await self.store.due_waiting(
                await self.clock.now())) and not self.blocked):
            # in progress: a claim committed, its answer lost (retried), never `completed` over them: back to
            # pending; due: they came due as the run ended, nothing a person must fix holds them. The run goes on.
            await self.store.reconcile()
            earlier, again = self.results, await self._run()
            return {**again, "results": (earlier + again["results"])[-self.options.max_results_kept:]}
        elif counts["pending"] == 0:
            await self.store.finish_campaign("completed")
            status, reason = "completed", None
        elif not due and (scheduled := await self.store.schedule_next(await self.clock.now())):
            status, reason = "active", None  # every waiting lead waits on a timer: the scheduler wakes the run
        else:
            status, reason = "paused", "; ".join(sorted(set(self.blocked.values()))) or "Leads are waiting"
            await self.store.finish_campaign("paused", reason)  # stored: GET /campaigns/{id} shows why
        self.counts = counts
        await self._publish(end_events(status, reason, scheduled, self._count_fields()))
        return {"status": status, "reason": reason, "counts": counts, "results": self.results,
                "latency_ms": latency_summary(self.latencies), "scheduled": scheduled}

    # --- one lead --------------------------------------------------------------------------------

    async def _process_lead(self, lead: dict) -> None:
        recorded = lead.get("attempts") or {}
        reached = next((name for name, a in recorded.items() if a.get("outcome") == "sent"), None)
        if reached:  # the send was recorded, its lead state was not (a crash between the two writes)
            return await self._end(lead, "sent", reached, None)
        unknown = next((name for name, a in recorded.items() if a.get("outcome") == "unknown"), None)
        if unknown:
            return await self._end(lead, "unknown", unknown, "Outcome unknown after a restart")
        if lead.get("excluded"):  # suppressed, rejected, or outside the campaign's audience (storage.suppressions)
            return await self._end(lead, "skipped", None, lead["excluded"], last_step=True)
        attempted = {name: a.get("error") or a["outcome"] for name, a in recorded.items() if a.get("outcome")}
        step = self._step(lead)
        order = self.order if step.channel == sequences.ANY else [step.channel]
        last_channel = None
        while True:
            closed = sequences.closed_channels(self.window, self.now, lead.get("timezone"), order)
            choice = policy.choose_channel(lead, order, attempted, {**closed, **self.blocked}, True)
            if choice.channel is None:
                if choice.outcome == "deferred":
                    return await self._defer(lead, last_channel, choice.reason, closed, attempted)
                return await self._end(lead, choice.outcome, last_channel, choice.reason)
            result = await self._try_channel(lead, choice.channel, step)
            if result is PAUSED:
                return await self.releases.submit(lead["id"])
            if result is None:
                continue
            last_channel = choice.channel
            if result.ok:
                return await self._end(lead, "sent", choice.channel, None)
            if result.outcome == "unknown":  # it may have reached the lead: never try another channel
                return await self._end(lead, "unknown", choice.channel, result.error or "Outcome unknown")
            if result.retry_at is not None:  # the sender paces this channel: the lead waits for its slot
                return await self._wait(lead, choice.channel, result.error, result.retry_at)
            if result.channel_blocked:
                self.blocked[choice.channel] = result.error or f"{choice.channel} is unavailable"
            else:
                attempted[choice.channel] = result.error or result.outcome

    def _step(self, lead: dict) -> sequences.Step:
        return self.steps[min(lead.get("step", 0), len(self.steps) - 1)]

    async def _defer(self, lead: dict, channel: str | None, reason: str, closed: dict, attempted: dict) -> None:
        """No channel can be used now. When a window is what holds the lead, it waits for the earliest one to
        open, with no one clicking `start`; otherwise (a limit, no account) it waits, pending, with the reason."""
        candidates = [name for name in closed if name not in attempted and name not in self.blocked
                      and lead.get(policy.CHANNEL_CONTACT[policy.Channel(name)])]
        opening = sequences.first_opening(self.window, self.now, lead.get("timezone"), candidates)
        if opening:
            return await self._wait(lead, channel, closed[opening[0]], opening[1])
        await self.outcomes.submit(Ended(lead, "pending", channel, reason, step=lead.get("step", 0)))

    async def _wait(self, lead: dict, channel: str | None, reason: str | None, until: datetime.datetime) -> None:
        await self.outcomes.submit(with_attempt(lead, Ended(lead, "pending", channel, reason, step=lead.get("step", 0),
                                                            due_at=until)))

    async def _campaign_at_step(self, lead: dict) -> dict:
        """The campaign as the drafter sees it: after the first step, with the step number and what was sent."""
        index = lead.get("step", 0)
        if not index:
            return self.campaign
        before = await self.store.sent_before(lead["id"])
        return {**self.campaign, "sequence_step": {"number": index + 1, "of": len(self.steps), "before": before}}

    async def _end(self, lead: dict, state: str, channel: str | None, error: str | None,
                   last_step: bool = False) -> None:
        """The lead's current step ended in `state`. With steps left it waits for the next one (due its delay
        after now); after the last, it ends `sent` if any step reached it."""
        index, reached_now = lead.get("step", 0), state == "sent"
        if not last_step and not sequences.is_last(self.steps, index):
            due = sequences.next_due(await self.clock.now(), self.steps, index + 1)
            return await self.outcomes.submit(with_attempt(lead, Ended(lead, "pending", channel, error, step=index + 1,
                                                                       due_at=due, reached=reached_now)))
        final = "sent" if lead.get("reached") and state in ("failed", "skipped") else state
        await self.outcomes.submit(with_attempt(lead, Ended(lead, final, channel, error, step=index, reached=reached_now)))

    async def _try_channel(self, lead: dict, channel: str, step: sequences.Step):
        """PAUSED, None (channel unusable now: look again), or the result (recorded when something was sent)."""
        message = await self._compose(lead, channel, step)
        if message is None or isinstance(message, SendResult):
            return message
        subject, text = message
        key = sequences.idempotency_key(self.campaign_id, lead["id"], lead.get("step", 0), channel)
        async with self.slots[channel]:
            if self._paused:  # queued for a slot when the pause came: give the lead back without a round trip
                return PAUSED
            verdict = await self.attempts.submit((lead["id"], channel, key, lead.get("step", 0)))
            if verdict == PAUSED:
                return PAUSED
            if verdict == "done":  # another run holds this attempt without an outcome
                return SendResult("unknown", error="Attempted by another run; its outcome is unknown")
            if verdict != "go":
                self.blocked[channel] = verdict
                return None
            job = SendJob(self.campaign_id, str(self.campaign["org_id"]), lead, channel, key, subject, text,
                          still_wanted=self._still_sending)
            result = await self._dispatch(job)
        attempted = Attempted(lead, channel, result, subject, text)
        if ends_the_step(result):  # written with the lead's end, in the same statement
            lead[UNRECORDED] = attempted
        else:  # the lead goes on to another channel once this attempt is written
            await self.outcomes.submit(attempted)
        return result

    def _still_sending(self) -> bool:
        return not self._paused

    async def _dispatch(self, job: SendJob) -> SendResult:
        try:
            return await self.dispatchers[job.channel].dispatch(job)
        except KeyError:
            return SendResult("not_sent", error=f"The {job.channel} channel is not configured", channel_blocked=True)
        except Exception as exc:  # a provider failure is this lead's failure on this channel
            log.warning("campaign %s: %s send failed: %r", self.campaign_id, job.channel, exc)
            if job.channel in REMOTE_CHANNELS:  # the call or message may have gone out before the failure
                return SendResult("unknown", error=f"{job.channel} send failed midway: {exc}")
            return SendResult(PROVIDER_ERROR, error=f"{job.channel} provider error: {exc}")

    async def _compose(self, lead: dict, channel: str, step: sequences.Step):
        """The (subject, text) written for this lead at this step (the step's templates, else the campaign's);
        None blocks the channel (no template, no drafter); a SendResult when drafting failed (nothing was sent)."""
        settings = sequences.step_settings(self.campaign["settings"], step)
        if channel == "voice":
            return None, None
        if channel == "email" and (template := templates.email_template(settings)):
            return templates.render(template[0], lead), templates.render(template[1], lead)
        if channel == "telegram" and (template := templates.telegram_template(settings)):
            return None, templates.render(template, lead)
        if self.drafter is None:
            self.blocked[channel] = (f"No {channel} template: set settings.templates.{channel} "
                                     "or configure OpenRouter for AI drafts")
            return None
        try:
            return await self.drafter.draft(channel, lead, await self._campaign_at_step(lead))
        except errors.ServiceError as exc:
            account_level = exc.details.get("status") in (401, 402, 429, 503) or exc.details.get("retry_after")
            return SendResult("not_sent", error=f"AI draft failed: {exc.message}", channel_blocked=bool(account_level))


    # --- batched writes ----------------------------------------------------------------------------

    async def _flush_attempts(self, jobs: list[tuple]) -> list:
        if self._paused:
            return [PAUSED] * len(jobs)
        with self._attempt_writes:
            verdicts = await self.store.start_attempts(self.campaign["plan"], jobs)
        return [verdicts[(job[0], job[1])] for job in jobs]

    async def _flush_releases(self, lead_ids: list) -> list:
        """Leads a pause caught before their send go back to pending together: a pause is prompt however many."""
        await self.store.release_leads(lead_ids)
        return [None] * len(lead_ids)

    async def _flush_outcomes(self, entries: list) -> list:
        batch, ended, items = OutcomeBatch(), [], flatten(entries)
        for item in items:
            if isinstance(item, Attempted):
                batch.add_attempt(item)
            else:
                batch.add_end(item)
                ended.append(item)
        await self.store.record_outcomes(batch)
        await self._publish(self._events_for(ended), counts_of(items))
        return [None] * len(entries)

    async def _publish(self, events: list[dict], counts: dict | None = None) -> None:
        """Best effort: PostgreSQL is the record, the feed a view of it (a watcher's snapshot rebuilds it)."""
        try:  # bounded: a flush waits for it, and a Redis that stopped answering must not hold up the record
            await asyncio.wait_for(self.events.publish(events, counts), PUBLISH_TIMEOUT_SECONDS)
        except Exception:
            log.warning("campaign %s: could not publish %d event(s)", self.campaign_id, len(events), exc_info=True)

    def _events_for(self, ended: list[Ended]) -> list[dict]:
        results = [result_of(item) for item in ended if item.state != "pending"]
        recorded_at = time.monotonic()
        for item in ended:
            self._count(item.state)
            self.latencies.append(recorded_at - item.lead.get("claimed_at", recorded_at))
        self.results = (self.results + results)[-self.options.max_results_kept:]
        events = [{"type": "result", "results": results}] if results else []
        return events + [self._progress_event()]

    def _count(self, state: str) -> None:
        key = {"sent": "succeeded"}.get(state, state)
        if key in ("succeeded", "failed", "skipped", "unknown"):
            self.counts[key] += 1
            self.counts["processed"] += 1
            self.counts["pending"] = max(0, self.counts["pending"] - 1)

    def _count_fields(self) -> dict:
        keys = ("total", "processed", "succeeded", "failed", "skipped", "unknown", "pending")
        return {key: self.counts.get(key, 0) for key in keys}

    def _progress_event(self) -> dict:
        return {"type": "progress", **self._count_fields()}


def raise_failures(done: set[asyncio.Task], others: set[asyncio.Task]) -> None:
    """Re-raise a lead task's failure, cancelling the others so none sends with nobody recording it."""
    for task in done:
        if task.exception() is not None:
            for other in others:
                other.cancel()
            raise task.exception()
