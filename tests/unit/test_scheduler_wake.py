"""The scheduler keeps a wake-up that arrives while it reads what is due (a NOTIFY racing its read), instead of
sleeping through it until the next cap."""
from __future__ import annotations

import asyncio
import contextlib
import datetime

from outreach.actors.scheduler import Scheduler

NOON = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


class Clock:
    async def now(self):
        return NOON


class RacingStore:
    """Nothing is due at the first claim; the campaign comes due (and its NOTIFY arrives) while the scheduler
    reads its next wake-up, whose read still sees tomorrow."""

    def __init__(self):
        self.claims, self.callback, self.due = 0, None, False

    async def claim_due(self, now, limit):
        self.claims += 1
        due, self.due = self.due, False
        return ["campaign"] if due else []

    async def next_wake(self):
        if self.claims == 1:
            self.due = True
            self.callback()  # the NOTIFY lands before the read returns
        await asyncio.sleep(0)
        return NOON + datetime.timedelta(days=1)

    @contextlib.asynccontextmanager
    async def listening(self, callback):
        self.callback = callback
        yield lambda: True


async def test_a_notify_arriving_during_the_read_of_the_next_wake_up_is_not_lost():
    woken = asyncio.Event()

    async def submit(campaign_id):
        woken.set()
        run = asyncio.get_running_loop().create_future()
        run.set_result({})
        return run

    scheduler = Scheduler(RacingStore(), submit, Clock(), max_sleep=3600)
    task = asyncio.create_task(scheduler.run())
    try:
        async with asyncio.timeout(5):  # the cap is an hour: only the kept wake-up can wake it in time
            await woken.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert scheduler.woken == 1
