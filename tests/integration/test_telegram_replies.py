"""Replies on Telegram: the account's actor listens while the account is active (Telethon's NewMessage events over
the scripted transport, which delivers incoming updates), and catches up on what arrived while it was not running.
A reply from a contacted lead is stored, stops the lead's remaining steps and marks it replied; a stop word
suppresses the username; a stranger's message changes nothing."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid

import pytest

from outreach.actors import remote
from outreach.providers import telegram
from outreach.runtime import crypto
from tests import factories
from tests.fakes import telegram as fake

API_ID, API_HASH = 12345, "0123456789abcdef0123456789abcdef"
LEAD = fake.user(5001, "lead_one")
STRANGER = fake.user(6001, "someone_else")


@pytest.fixture
def telegram_settings(settings):
    return dataclasses.replace(settings, telegram_api_id=API_ID, telegram_api_hash=API_HASH,
                               telegram_pacing_override=(0.0, 0.0))


@pytest.fixture
async def contacted(api, pool):
    """Lead @lead_one, written to by the org's account in campaign `first` and waiting in campaign `second`."""
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", api.org_id)
    account = await factories.insert_telegram_account(
        pool, api.org_id, status="active", session=crypto.encrypt("test-secret", fake.session_string()))
    lead = await factories.insert_lead(pool, api.org_id, first_name="Lead", telegram_username="Lead_One")
    first = await factories.insert_campaign(pool, api.org_id, status="active", channels=["telegram"],
                                            settings={"onReply": "qualified"})
    second = await factories.insert_campaign(pool, api.org_id, status="paused", channels=["telegram"])
    for campaign, state in ((first, "sent"), (second, "pending")):
        await factories.insert_row(pool, "campaign_leads", campaign_id=campaign["id"], lead_id=lead["id"],
                                   org_id=api.org_id, state=state)
    await factories.insert_row(pool, "attempts", campaign_id=first["id"], lead_id=lead["id"], org_id=api.org_id,
                               channel="telegram", idempotency_key="k", outcome="sent", provider_id="5001:9")
    await factories.insert_message(pool, api.org_id, lead["id"], campaign_id=first["id"], channel="telegram",
                                   content="Hi Lead!", provider_id="5001:9")
    # The account resolved the username when it wrote: that peer is how its replies are matched.
    await factories.insert_row(pool, "telegram_peers", account_id=account["id"], username="lead_one",
                               user_id=LEAD.id, access_hash=LEAD.access_hash)
    return {"account": account, "lead": lead, "first": first, "second": second}


@pytest.fixture
async def listening(monkeypatch, telegram_settings):
    """Factory: an account actor (its class, outside Ray) listening over a FakeTelegram with `script`."""
    made = []

    def start(account_id, script=()) -> tuple[remote.TelegramAccountActor, fake.FakeTelegram]:
        server = fake.FakeTelegram(list(script))
        build_client = telegram.build_client

        def build_with_fake(*args, **kwargs):
            client = build_client(*args, **kwargs)
            fake.attach(client, server)
            return client

        monkeypatch.setattr(telegram, "build_client", build_with_fake)
        made.append(remote.TelegramAccountActor(str(account_id), telegram_settings))
        return made[-1], server

    yield start
    for actor in made:
        if actor._listening is not None:
            actor._listening.cancel()
            await asyncio.gather(actor._listening, return_exceptions=True)
        if actor._idle is not None:
            actor._idle.cancel()
        if actor.account is not None:
            await actor.account.sender.close()
        if actor._pool is not None:
            await actor._pool.close()


async def wait_until(condition, timeout: float = 10):
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def inbound(pool) -> list[tuple]:
    rows = await pool.fetch("""SELECT lead_id, content, provider_id, parent_id IS NOT NULL AS threaded
                               FROM messages WHERE direction = 'inbound' ORDER BY created_at, provider_id""")
    return [tuple(row) for row in rows]


async def test_a_reply_while_listening_stops_the_lead_and_marks_it_replied(api, pool, contacted, listening):
    actor, server = listening(contacted["account"]["id"], [fake.dialogs()])
    assert await actor.listen() is True
    assert await actor.listen() is True and server.connections == 1  # a second call finds it listening
    server.deliver(STRANGER, 41, "hello?")  # not a lead this account wrote to: ignored
    server.deliver(LEAD, 42, "Sounds interesting, call me tomorrow")

    async def stored():
        return len(await inbound(pool)) == 1

    await wait_until(stored)
    lead = contacted["lead"]
    assert await inbound(pool) == [(lead["id"], "Sounds interesting, call me tomorrow", f"in:{LEAD.id}:42", True)]
    rows = {row["campaign_id"]: tuple(row)[1:] for row in await pool.fetch(
        "SELECT campaign_id, state::text, error, replied_at IS NOT NULL FROM campaign_leads")}
    assert rows == {contacted["first"]["id"]: ("sent", None, True),
                    contacted["second"]["id"]: ("skipped", "Lead replied", False)}
    assert await pool.fetchval("SELECT status::text FROM leads WHERE id = $1", lead["id"]) == "qualified"
    assert await pool.fetchval("SELECT status::text FROM messages WHERE provider_id = '5001:9'") == "replied"
    analytics = (await api.get("/api/dashboard/analytics")).body["telegram"]
    assert analytics["replyRate"] > 0
    assert await pool.fetchval("SELECT last_message_id FROM telegram_inbox") == 42
    assert await pool.fetchval("SELECT count(*) FROM suppressions") == 0


async def test_a_reply_reaches_every_lead_row_written_to_under_the_username_in_any_form(api, pool, contacted,
                                                                                        listening):
    """The same person saved again as a t.me link (normalised on save) and written to by `second`: the reply is
    stored on, and stops, both rows; a third row nobody wrote to is left alone."""
    created = await api.post("/api/dashboard/leads", json={"firstName": "Lead",
                                                            "telegramUsername": "https://t.me/Lead_One"})
    assert created.status == 201 and created.body["telegramUsername"] == "lead_one"
    twin, second = created.body["id"], contacted["second"]["id"]
    await pool.execute("UPDATE campaign_leads SET step = 1 WHERE campaign_id = $1", second)
    await factories.insert_row(pool, "campaign_leads", campaign_id=second, lead_id=twin, org_id=api.org_id,
                               state="pending", step=1)
    await factories.insert_message(pool, api.org_id, twin, campaign_id=second, channel="telegram", content="Hi!",
                                   provider_id="5001:10")
    untouched = (await api.post("/api/dashboard/leads", json={"firstName": "Lead",
                                                               "telegramUsername": "@LEAD_ONE"})).body
    actor, server = listening(contacted["account"]["id"], [fake.dialogs()])
    await actor.listen()
    server.deliver(LEAD, 44, "Sure, let's talk")

    async def stored():
        return len(await inbound(pool)) == 2

    await wait_until(stored)
    assert {row[0] for row in await inbound(pool)} == {contacted["lead"]["id"], uuid.UUID(twin)}
    rows = await pool.fetch("SELECT lead_id, state::text, error FROM campaign_leads WHERE campaign_id = $1", second)
    assert {(str(row["lead_id"]), row["state"], row["error"]) for row in rows} == {
        (str(contacted["lead"]["id"]), "skipped", "Lead replied"), (twin, "skipped", "Lead replied")}
    assert await pool.fetchval("SELECT status::text FROM leads WHERE id = $1", uuid.UUID(untouched["id"])) == "new"


async def test_a_stop_word_suppresses_the_username(api, pool, contacted, listening):
    actor, server = listening(contacted["account"]["id"], [fake.dialogs()])
    await actor.listen()
    server.deliver(LEAD, 43, "Стоп, не пишите мне больше")

    async def suppressed():
        return await pool.fetchval("SELECT count(*) FROM suppressions") == 1

    await wait_until(suppressed)
    row = await pool.fetchrow("SELECT org_id, type, value, source FROM suppressions")
    assert tuple(row) == (api.org_id, "telegram", "lead_one", "reply")


async def test_replies_that_arrived_while_nobody_listened_are_picked_up_once(api, pool, contacted, listening):
    account_id = contacted["account"]["id"]
    await factories.insert_row(pool, "telegram_inbox", account_id=account_id, last_message_id=40)
    older = fake.incoming(39, LEAD, "seen before the actor stopped")
    script = [fake.dialogs((LEAD, 45, 2), (STRANGER, 44, 1)),
              fake.history(older, fake.incoming(41, LEAD, "our own", out=True), fake.incoming(44, LEAD, "Yes please"),
                           fake.incoming(45, LEAD, "When can we talk?")),
              fake.history(fake.incoming(44, STRANGER, "spam"))]
    actor, server = listening(account_id, script)
    assert await actor.listen() is True

    async def caught_up():
        return len(await inbound(pool)) == 2

    await wait_until(caught_up)
    assert server.script == []  # the dialogs, then each unread dialog's history
    assert [row[1] for row in await inbound(pool)] == ["Yes please", "When can we talk?"]
    assert server.requests[1].min_id == 40  # only what is newer than the last message handled
    assert await pool.fetchval("SELECT last_message_id FROM telegram_inbox") == 45
    # The same messages read again (another restart before Telegram marks them read) change nothing.
    again, second = listening(account_id, [fake.dialogs((LEAD, 45, 2)), fake.history(fake.incoming(45, LEAD, "x"))])
    await again.listen()

    async def looked():
        return len(second.script) == 1  # the dialogs were read; nothing above the cursor, so no history

    await wait_until(looked)
    assert len(await inbound(pool)) == 2


async def test_an_inbox_listens_while_the_account_is_active_and_stops_after(pool, contacted):
    from outreach.actors.telegram_inbox import TelegramInbox
    from outreach.storage.replies import PgInbox

    account_id = contacted["account"]["id"]
    client = telegram.build_client(fake.session_string(), API_ID, API_HASH, True)
    server = fake.attach(client, fake.FakeTelegram([fake.dialogs()]))
    sender = telegram.TelethonSender(client)
    checks = []

    async def cooldown_after_first_check(seconds):  # the account is put in cooldown while it listens
        checks.append(seconds)
        await pool.execute("UPDATE telegram_accounts SET status = 'cooldown' WHERE id = $1", account_id)

    inbox = TelegramInbox(account_id, PgInbox(pool, account_id), sender, check_every=30,
                          sleep=cooldown_after_first_check)
    try:
        await asyncio.wait_for(inbox.run(), timeout=10)
    finally:
        await sender.close()
    assert checks == [30] and server.connections == 1


async def test_every_account_that_may_write_is_told_to_listen(pool, contacted, api):
    from outreach.actors.telegram_inbox import keep_listening
    from outreach.storage.replies import listening_accounts

    await factories.insert_telegram_account(pool, api.org_id, status="banned")
    await factories.insert_telegram_account(pool, None, status="active")  # not given to an organization
    await factories.insert_telegram_account(pool, api.org_id, status="active", session="sandbox")
    told = []

    async def listen(account_ids):
        told.append(list(account_ids))

    assert await keep_listening(lambda: listening_accounts(pool), listen) == [contacted["account"]["id"]]
    assert told == [[contacted["account"]["id"]]]


async def test_a_telegram_reply_between_two_steps_means_the_second_is_never_sent(api, pool, redis, listening):
    """Step 1 on Telegram, step 2 a day later on any channel: the lead answers in between (through the account's
    inbox, on the scripted transport), so step 2 goes out on no channel, now or later."""
    from tests.integration.test_runner import WEEKDAY_NOON, FixedClock, campaign_with_leads, make_runner

    two_steps = {"sequence": [{"channel": "telegram"}, {"channel": "any", "delay": {"days": 1}}]}
    lead_row = {"firstName": "Lead", "telegramUsername": "lead_one", "email": "lead@example.com",
                "phone": "+14155550100"}
    campaign_id, (lead_id,) = await campaign_with_leads(api, pool, 0, channels=("telegram", "email", "voice"),
                                                        leads=[lead_row], settings=two_steps)
    clock = FixedClock(WEEKDAY_NOON)
    sent = {"telegram": {"sent": 1.0}, "email": {"sent": 1.0}, "voice": {"sent": 1.0}}
    first = await make_runner(pool, redis, campaign_id, mixes=sent, clock=clock).run()
    assert first["status"] == "active"
    assert [tuple(row) for row in await pool.fetch("SELECT step, channel::text FROM attempts")] == [(0, "telegram")]

    account = await factories.insert_telegram_account(
        pool, api.org_id, status="active", session=crypto.encrypt("test-secret", fake.session_string()))
    await factories.insert_row(pool, "telegram_peers", account_id=account["id"], username="lead_one",
                               user_id=LEAD.id, access_hash=LEAD.access_hash)
    actor, server = listening(account["id"], [fake.dialogs()])
    await actor.listen()
    server.deliver(LEAD, 7, "Thanks, not now")

    async def replied():
        return await pool.fetchval("SELECT replied_at IS NOT NULL FROM campaign_leads WHERE lead_id = $1", lead_id)

    await wait_until(replied)
    clock.current = WEEKDAY_NOON + datetime.timedelta(days=2)
    second = await make_runner(pool, redis, campaign_id, mixes=sent, clock=clock).run()
    assert second["status"] == "completed"
    assert [tuple(row) for row in await pool.fetch("SELECT step, channel::text FROM attempts")] == [(0, "telegram")]
    row = await pool.fetchrow("SELECT state::text, error FROM campaign_leads WHERE lead_id = $1", lead_id)
    assert tuple(row) == ("sent", "Lead replied")
