"""The number release sweeper: releases at Twilio the numbers whose grace period after a lapsed plan has ended.

One runs in every API process; the store (storage.number_release.PgNumberReleases) hands each due number to one of
them, locked and re-checked as still lapsed while Twilio releases it, so a payment never loses a number to a sweep
already under way; a release that fails (Twilio down, not configured) is tried again after the lease.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from typing import Protocol

from outreach.runtime import errors
from outreach.runtime.ports import Clock

log = logging.getLogger(__name__)


class ReleaseStore(Protocol):
    async def release_next(self, now: datetime.datetime, lease_until: datetime.datetime, release) -> bool | None:
        """Await `release(row)` for one due number, locked and still lapsed; None when none is due."""


class NumberReleaser:
    def __init__(self, store: ReleaseStore, twilio, clock: Clock, *, interval: float = 60.0,
                 lease: datetime.timedelta = datetime.timedelta(minutes=10)):
        self.store = store
        self.twilio = twilio  # providers.twilio.Twilio (find_number, release_number); None when not configured
        self.clock = clock
        self.interval = interval
        self.lease = lease

    async def release_due(self) -> int:
        """Release every number due by the clock, one at a time; returns how many were released (failures wait
        for the lease, so each number is tried once per sweep)."""
        released = 0
        while True:
            now = await self.clock.now()
            outcome = await self.store.release_next(now, now + self.lease, self.release)
            if outcome is None:
                return released
            released += outcome

    async def release(self, row: dict) -> bool:
        try:
            if row["provider"] == "twilio":
                await self.release_at_twilio(row)
        except errors.ServiceError as exc:
            log.warning("number %s: release failed, retried after %s: %s", row["number"], self.lease, exc.message)
            return False
        log.info("number %s of organization %s released after its plan lapsed", row["number"], row["org_id"])
        return True

    async def release_at_twilio(self, row: dict) -> None:
        if self.twilio is None:
            raise errors.NotConfigured("Twilio is not configured")
        sid = row["provider_sid"] or await self.twilio.find_number(row["number"])
        if sid is not None:
            await self.twilio.release_number(sid)  # False when already gone: released all the same

    async def run(self, until: asyncio.Event | None = None) -> int:
        """Sweep every `interval` seconds until `until` is set; without it, once until nothing is due (tests)."""
        released = 0
        while True:
            try:
                released += await self.release_due()
            except Exception:  # the database may be the reason: the next pass tries again
                log.warning("number release sweep failed", exc_info=True)
            if until is None:
                return released
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), self.interval)
            if until.is_set():
                return released
