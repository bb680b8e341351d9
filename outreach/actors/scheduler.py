"""The scheduler: wakes campaigns whose leads come due, in every API process, each due campaign once.

Due campaigns are claimed in PostgreSQL (`campaigns.next_due_at` through a partial index, `FOR UPDATE SKIP
LOCKED`, their wake-up moved a lease ahead), so two API processes never both wake one; even if they did, the
campaign actor runs one run at a time and the attempts' unique key sends no step twice. Between wake-ups it
sleeps until the earliest next one (capped), or until a run or a start NOTIFYs an earlier one: no polling
of every campaign.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from outreach.runtime.ports import Clock, TimerStore

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, store: TimerStore, submit: Callable[[object], Awaitable], clock: Clock, *,
                 max_sleep: float = 60.0, batch: int = 100,
                 max_backoff: float = 30.0):
        self.store = store  # storage.timers.PgTimerStore
        self.submit = submit  # campaign id -> the run (an awaitable: RayRuntime.submit)
        self.clock = clock
        self.max_sleep = max_sleep
        self.batch = batch
        self._wake = asyncio.Event()
        self.woken = 0  # campaigns woken by this scheduler (for tests and the benchmark)
        self.failures = 0  # database steps failed in a row (the backoff grows with them)
        self.max_backoff = max_backoff

    async def wake_due(self) -> list:
        """Claim every campaign due by the clock and submit its run; returns the runs."""
        runs = []
        while True:
            campaign_ids = await self.store.claim_due(await self.clock.now(), self.batch)
            for campaign_id in campaign_ids:
                runs.append(await self.submit(campaign_id))
            self.woken += len(campaign_ids)
            if len(campaign_ids) < self.batch:
                return runs

    async def run(self, until_empty: bool = False) -> None:
        """Wake due campaigns until cancelled. `until_empty`: wait for the runs woken, and return once no
        campaign is due by the clock (tests and benchmarks end). Any database step that fails (PostgreSQL away or
        restarted) is retried after a capped backoff, LISTENing again on a new connection: this loop outlives it."""
        while True:
            try:
                async with self.store.listening(self._wake.set) as alive:  # a run or a start set a wake-up
                    return await self._loop(until_empty, alive)
            except Exception as exc:
                self.failures += 1
                delay = backoff_seconds(self.failures, self.max_backoff)
                log.warning("scheduler: database step failed (%s); again in %.1f s", exc, delay)
                await asyncio.sleep(delay)  # not listening meanwhile: nothing could wake it earlier

    async def _loop(self, until_empty: bool, alive: Callable[[], bool]) -> None:
        while True:
            if not alive():  # the LISTEN connection died (a PostgreSQL restart): listen again on a new one
                raise ConnectionError("the LISTEN connection was lost")
            # Cleared before reading what is due, not after: a NOTIFY arriving while we read is kept, not lost.
            self._wake.clear()
            runs = await self.wake_due()
            self.failures = 0
            if until_empty:
                if not runs:
                    return
                await asyncio.gather(*runs, return_exceptions=True)
                continue
            await self._sleep(await self._seconds_to_next())

    async def _seconds_to_next(self) -> float:
        next_due = await self.store.next_wake()
        if next_due is None:
            return self.max_sleep
        now = await self.clock.now()
        return min(max((next_due - now).total_seconds(), 0.0), self.max_sleep)

    async def _sleep(self, seconds: float) -> None:
        """Until `seconds` pass or a wake-up set since the loop last cleared it (before reading what is due)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass


def backoff_seconds(failures: int, cap: float) -> float:
    """0.5 s after the first failure, doubling with each one in a row, at most `cap`."""
    return min(0.5 * 2 ** min(failures - 1, 16), cap)
