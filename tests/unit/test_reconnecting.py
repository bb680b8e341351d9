"""A run outlives database outages: its store calls are tried again while PostgreSQL is unreachable, and an email
send that has not gone out waits for the database instead of starting a send nobody could record."""
from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from outreach.actors.dispatchers import GatedEmail
from outreach.runtime import errors
from outreach.runtime.ports import OutboundEmail, SendResult
from outreach.storage.run_store import Reconnecting, is_transient

EMAIL = OutboundEmail(sender="a@acme.test", to="b@example.com", reply_to=None, subject="s", text="t")


class FlakyStore:
    def __init__(self, failures: list[BaseException]):
        self.failures = failures
        self.calls = 0

    async def claim_leads(self, after, size: int) -> list:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return [after, size]


def reconnecting(store, slept: list):
    async def sleep(seconds):
        slept.append(seconds)

    return Reconnecting(store, "campaign test", sleep=sleep, rng=random.Random(1))


async def test_a_call_is_tried_again_until_the_database_answers():
    slept: list[float] = []
    store = FlakyStore([ConnectionRefusedError(111, "refused"), asyncpg.CannotConnectNowError("starting up"),
                        asyncpg.AdminShutdownError("terminating connection"), OSError("reset")])
    wrapped = reconnecting(store, slept)
    assert await wrapped.claim_leads("cursor", 5) == ["cursor", 5]
    assert store.calls == 5 and len(slept) == 4
    assert slept[0] <= 0.1 and slept[-1] > slept[0], "the backoff grows"
    assert wrapped.is_reachable()


async def test_while_it_is_unreachable_sends_wait_and_go_once_it_answers():
    store = FlakyStore([ConnectionRefusedError(111, "refused")])
    gate = asyncio.Event()

    async def sleep(seconds):
        await gate.wait()  # the database stays away until the test lets it back

    wrapped = Reconnecting(store, "campaign test", sleep=sleep)
    claim = asyncio.create_task(wrapped.claim_leads("c", 1))
    while wrapped.is_reachable():
        await asyncio.sleep(0)
    sender = RecordingSender()
    send = asyncio.create_task(GatedEmail(sender, wrapped).send_email(EMAIL, "k", still_wanted=lambda: True))
    await asyncio.sleep(0.05)
    assert sender.keys == [] and not send.done(), "a send started while nothing could record it"
    gate.set()
    assert await claim == ["c", 1]
    assert (await send).ok and sender.keys == ["k"]


class RecordingSender:
    """Returns `not_sent` when the campaign no longer wants the send (as ResendEmail does), else sends."""

    def __init__(self):
        self.keys: list[str] = []

    async def send_email(self, email, idempotency_key: str, still_wanted=None) -> SendResult:
        if still_wanted is not None and not still_wanted():
            return SendResult("not_sent", error="not wanted", channel_blocked=True)
        self.keys.append(idempotency_key)
        return SendResult("sent", provider_id="id-1")


async def test_a_send_given_back_by_a_pause_is_not_held_for_the_database():
    wrapped = reconnecting(FlakyStore([]), [])
    result = await GatedEmail(RecordingSender(), wrapped).send_email(EMAIL, "k", still_wanted=lambda: False)
    assert result.outcome == "not_sent"


async def test_an_error_of_the_statement_itself_is_not_retried():
    slept: list[float] = []
    store = FlakyStore([errors.Conflict("This lead was already attempted on this channel")])
    with pytest.raises(errors.Conflict):
        await reconnecting(store, slept).claim_leads("c", 1)
    assert store.calls == 1 and slept == []


@pytest.mark.parametrize("error, transient", [
    (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True),
    (asyncpg.InterfaceError("connection is closed"), True),
    (asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"), True),
    (asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed"), False),
    (asyncpg.UndefinedTableError("relation does not exist"), False),
    (TimeoutError(), True),
])
def test_what_counts_as_the_database_being_away(error, transient):
    assert is_transient(error) is transient
