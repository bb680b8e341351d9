"""The number release sweeper: releases at Twilio the numbers whose grace period after a lapsed plan has ended.

One runs in every API process; the store (storage.number_release.PgNumberReleases) claims each due number for
one of them with a lease, so a release that fails (Twilio down, not configured) is tried again after the lease.
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
    async def claim_due(self, now: datetime.datetime, lease_until: datetime.datetime, limit: int) -> list[dict]: ...

    async def forget(self, number_id) -> None: ...


class NumberReleaser:
    def __init__(self, store: ReleaseStore, twilio, clock: Clock, *, interval: float = 60.0,
                 lease: datetime.timedelta = datetime.timedelta(minutes=10), batch: int = 20):
        self.store = store
        self.twilio = twilio  # providers.twilio.Twilio (find_number, release_number); None when not configured
        self.clock = clock
        self.interval = interval
        self.lease = lease
        self.batch = batch

    async def release_due(self) -> int:
        """Release every number due by the clock; returns how many were released (failures wait for the lease)."""
        released = 0
        while True:
            now = await self.clock.now()
            due = await self.store.claim_due(now, now + self.lease, self.batch)
            for row in due:
                released += await self.release(row)
            if len(due) < self.batch:
                return released

    async def release(self, row: dict) -> int:
        try:
            if row["provider"] == "twilio":
                await self.release_at_twilio(row)
        except errors.ServiceError as exc:
            log.warning("number %s: release failed, retried after %s: %s", row["number"], self.lease, exc.message)
            return 0
        await self.store.forget(row["id"])
        log.info("number %s of organization %s released after its plan lapsed", row["number"], row["org_id"])
        return 1

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
