"""The Telethon sender, running Telethon's real client code over the scripted sender (tests/fakes/telegram.py).

The client is built exactly as the account actor builds it, connects through Telethon's connect(),
and gets Telethon's own error classes; only the MTProto transport underneath is scripted.
"""
from __future__ import annotations

import asyncio
import dataclasses

import pytest
from telethon.tl import functions, types

from outreach.actors import remote, senders
from outreach.actors.telegram_account import ACCOUNT_UNAVAILABLE, TelegramAccount
from outreach.runtime import crypto
from outreach.runtime.pacing import Warmup
from outreach.runtime.ports import SendResult, SystemClock
from outreach.providers import telegram
from outreach.storage import db, orgs, telegram_accounts
from tests import factories
from tests.fakes import telegram as fake

API_ID, API_HASH = 12345, "0123456789abcdef0123456789abcdef"
LEAD = fake.user(5001, "lead_one")
RESOLVE, SEND = functions.contacts.ResolveUsernameRequest, functions.messages.SendMessageRequest
pytestmark = pytest.mark.usefixtures("redis")  # conftest's clean_state flushes it after every database test


@pytest.fixture
async def telethon():
    """Factory: a TelethonSender over a logged-in session whose transport is a FakeTelegram; closed after."""
    made = []

    def make(script=(), **options) -> tuple[telegram.TelethonSender, fake.FakeTelegram]:
        client = telegram.build_client(fake.session_string(), API_ID, API_HASH)
        server = fake.attach(client, fake.FakeTelegram(script, **options))
        made.append(telegram.TelethonSender(client))
        return made[-1], server

    yield make
    for sender in made:
        await sender.close()


async def test_sends_resolving_the_username_once(telethon):
    sender, server = telethon([fake.resolve(LEAD), fake.send(41), fake.send(42)])
    first = await sender.send_message("lead_one", "Hi Lead!")
    second = await sender.send_message("@Lead_One", "Following up")
    assert first == SendResult("sent", provider_id="5001:41") and second == SendResult("sent", provider_id="5001:42")
    assert [type(request) for request in server.requests] == [RESOLVE, SEND, SEND]  # no second resolve
    resolve, send_one, send_two = server.requests
    assert resolve.username == "lead_one"
    assert send_one.peer == send_two.peer == types.InputPeerUser(5001, LEAD.access_hash)
    assert (send_one.message, send_two.message) == ("Hi Lead!", "Following up")
    assert send_one.random_id != send_two.random_id


async def test_the_client_connects_through_telethon_and_asks_for_no_updates(telethon):
    sender, server = telethon([fake.resolve(LEAD), fake.send(1)])
    await sender.send_message("lead_one", "Hi")
    assert server.connections == 1
    assert [type(chore) for chore in server.chores][:2] == [functions.help.GetConfigRequest,
                                                            functions.users.GetUsersRequest]
    assert set(server.envelopes) == {functions.InvokeWithoutUpdatesRequest}
    assert sender.client.flood_sleep_threshold == 0


async def test_each_account_resolves_with_its_own_access_hash(telethon):
    as_seen_by_a, as_seen_by_b = fake.user(5001, "lead_one", access_hash=111), fake.user(5001, "lead_one", access_hash=222)
    sender_a, server_a = telethon([fake.resolve(as_seen_by_a), fake.send(1)])
    sender_b, server_b = telethon([fake.resolve(as_seen_by_b), fake.send(1)])
    assert (await sender_a.send_message("lead_one", "Hi")).ok and (await sender_b.send_message("lead_one", "Hi")).ok
    assert server_a.requests[1].peer.access_hash == 111 and server_b.requests[1].peer.access_hash == 222


SEND_ERRORS = [
    (420, "FLOOD_WAIT_420", "flood_wait", True),
    (400, "PEER_FLOOD", "peer_flood", True),
    (401, "USER_DEACTIVATED_BAN", "banned", True),
    (401, "USER_DEACTIVATED", "deactivated", True),
    (401, "AUTH_KEY_UNREGISTERED", "session_revoked", True),
    (401, "SESSION_REVOKED", "session_revoked", True),
    (406, "AUTH_KEY_DUPLICATED", "session_revoked", True),
    (403, "USER_PRIVACY_RESTRICTED", "privacy_restricted", False),
    (400, "USER_IS_BLOCKED", "user_blocked", False),
    (400, "YOU_BLOCKED_USER", "user_blocked", False),
    (400, "INPUT_USER_DEACTIVATED", "invalid_recipient", False),
    (400, "MESSAGE_TOO_LONG", "failed", False),
]


@pytest.mark.parametrize("code, message, outcome, account_level", SEND_ERRORS)
async def test_send_errors_map_to_outcomes(telethon, code, message, outcome, account_level):
    sender, server = telethon([fake.resolve(LEAD), fake.fail(SEND, code, message)])
    result = await sender.send_message("lead_one", "Hi")
    assert (result.outcome, result.channel_blocked) == (outcome, account_level)
    assert result.retry_after == (420 if outcome == "flood_wait" else None)
    assert result.error and server.script == []


@pytest.mark.parametrize("code, message, outcome", [
    (400, "USERNAME_NOT_OCCUPIED", "username_not_found"),
    (400, "USERNAME_INVALID", "username_not_found"),
    (420, "FLOOD_WAIT_75", "flood_wait"),
    (401, "AUTH_KEY_UNREGISTERED", "session_revoked"),
])
async def test_resolve_errors_map_to_outcomes_and_nothing_is_sent(telethon, code, message, outcome):
    sender, server = telethon([fake.fail(RESOLVE, code, message)])
    result = await sender.send_message("lead_one", "Hi")
    assert result.outcome == outcome and [type(request) for request in server.requests] == [RESOLVE]


async def test_a_flood_wait_comes_back_at_once_instead_of_being_slept_through(telethon):
    sender, server = telethon([fake.resolve(LEAD), fake.fail(SEND, 420, "FLOOD_WAIT_5")])
    result = await asyncio.wait_for(sender.send_message("lead_one", "Hi"), timeout=2)
    assert result.outcome == "flood_wait" and result.retry_after == 5 and len(server.requests) == 2


async def test_a_username_of_a_channel_is_not_a_person(telethon):
    sender, server = telethon([fake.Reply(RESOLVE, fake.resolved_channel(username="news"))])
    result = await sender.send_message("news", "Hi")
    assert result.outcome == "invalid_recipient" and not result.channel_blocked
    assert [type(request) for request in server.requests] == [RESOLVE]


@pytest.mark.parametrize("username", ["not a username", "", "https://t.me/+AbCdEf123", "ab"])
async def test_text_that_is_no_username_is_refused_without_asking_telegram(telethon, username):
    sender, server = telethon()
    result = await sender.send_message(username, "Hi")
    assert result.outcome == "username_not_found" and server.connections == 0


async def test_a_connection_lost_while_sending_is_unknown_and_not_resent(telethon):
    sender, server = telethon([fake.resolve(LEAD), fake.Reply(SEND, ConnectionError("connection reset"))])
    result = await sender.send_message("lead_one", "Hi")
    assert result.outcome == "unknown" and not result.channel_blocked
    assert [type(request) for request in server.requests] == [RESOLVE, SEND]


async def test_telegram_unreachable_before_sending_rests_the_account(telethon):
    sender, server = telethon([fake.Reply(RESOLVE, ConnectionError("network is unreachable"))])
    result = await sender.send_message("lead_one", "Hi")
    assert (result.outcome, result.retry_after, result.channel_blocked) == ("flood_wait", 60, True)
    assert "Cannot reach Telegram" in result.error


async def test_a_session_used_elsewhere_is_refused_when_connecting(telethon):
    sender, server = telethon(connect_error=fake.rpc_error(406, "AUTH_KEY_DUPLICATED"))
    result = await sender.send_message("lead_one", "Hi")
    assert result.outcome == "session_revoked" and "AuthKeyDuplicated" in result.error
    assert server.requests == [] and not sender.client.is_connected()


async def test_a_logged_out_session_is_revoked(telethon):
    sender, _ = telethon([fake.fail(RESOLVE, 401, "AUTH_KEY_UNREGISTERED")], me=None)
    assert (await sender.send_message("lead_one", "Hi")).outcome == "session_revoked"


async def test_close_disconnects_and_the_next_send_connects_again(telethon):
    sender, server = telethon([fake.resolve(LEAD), fake.send(1), fake.send(2)])
    assert (await sender.send_message("lead_one", "Hi")).ok
    await sender.close()
    assert not sender.client.is_connected()
    assert (await sender.send_message("lead_one", "Again")).ok
    assert server.connections == 2 and [type(request) for request in server.requests] == [RESOLVE, SEND, SEND]


# --- the account actor's class over PostgreSQL ----------------------------------------------------


@pytest.fixture
async def org_and_campaign(pool):
    async with db.transaction(pool) as conn:
        org_id = await orgs.local_org(conn, "acme")
    campaign = await factories.insert_campaign(pool, org_id, status="active", channels=["telegram"])
    return org_id, campaign["id"]


async def insert_account(pool, org_id, secret_key: str = "test-secret", **values) -> dict:
    session = crypto.encrypt(secret_key, fake.session_string())
    return await factories.insert_telegram_account(pool, org_id, status="active", session=session, **values)


async def account_state(pool, account_id) -> dict:
    return dict(await pool.fetchrow(
        """SELECT status::text, daily_message_count, last_message_at,
                  extract(epoch FROM flood_wait_until - now()) AS wait_left
           FROM telegram_accounts WHERE id = $1""", account_id))


async def test_a_send_counts_against_the_account_day(pool, telethon, org_and_campaign):
    org_id, campaign_id = org_and_campaign
    account = await insert_account(pool, org_id)
    sender, _ = telethon([fake.resolve(LEAD), fake.send(7)])
    worker = TelegramAccount(account["id"], telegram_accounts.PgAccountState(pool), sender, pacing=(0, 0))
    assert await worker.send(campaign_id, "lead_one", "Hi") == SendResult("sent", provider_id="5001:7")
    state = await account_state(pool, account["id"])
    assert state["daily_message_count"] == 1 and state["last_message_at"] is not None


async def test_flood_wait_pauses_the_account_in_postgresql(pool, telethon, org_and_campaign):
    org_id, campaign_id = org_and_campaign
    account = await insert_account(pool, org_id)
    sender, server = telethon([fake.resolve(LEAD), fake.fail(SEND, 420, "FLOOD_WAIT_420")])
    worker = TelegramAccount(account["id"], telegram_accounts.PgAccountState(pool), sender, pacing=(0, 0))
    result = await worker.send(campaign_id, "lead_one", "Hi")
    assert result.outcome == ACCOUNT_UNAVAILABLE and "420" in result.error
    state = await account_state(pool, account["id"])
    assert 400 < state["wait_left"] <= 420 and state["status"] == "active" and state["daily_message_count"] == 0
    async with db.connection(pool) as conn:
        capacity = await telegram_accounts.org_capacity(conn, org_id, await SystemClock().now(), Warmup())
    assert capacity.account_ids == [] and capacity.retry_at is not None  # campaigns pick other accounts
    again = await worker.send(campaign_id, "lead_two", "Hi")
    assert again.error == "Telegram account is waiting out a flood limit" and len(server.requests) == 2


async def test_peer_flood_puts_the_account_in_cooldown_in_postgresql(pool, telethon, org_and_campaign):
    org_id, campaign_id = org_and_campaign
    account = await insert_account(pool, org_id)
    sender, _ = telethon([fake.resolve(LEAD), fake.fail(SEND, 400, "PEER_FLOOD")])
    worker = TelegramAccount(account["id"], telegram_accounts.PgAccountState(pool), sender, pacing=(0, 0))
    assert (await worker.send(campaign_id, "lead_one", "Hi")).outcome == ACCOUNT_UNAVAILABLE
    state = await account_state(pool, account["id"])
    assert state["status"] == "cooldown" and state["daily_message_count"] == 0
    assert (await worker.send(campaign_id, "lead_two", "Hi")).error == "Telegram account is cooldown"


@pytest.mark.parametrize("code, message", [(401, "USER_DEACTIVATED_BAN"), (406, "AUTH_KEY_DUPLICATED")])
async def test_a_banned_account_or_dead_session_takes_the_account_out(pool, telethon, org_and_campaign, code, message):
    org_id, campaign_id = org_and_campaign
    account = await insert_account(pool, org_id)
    sender, _ = telethon([fake.resolve(LEAD), fake.fail(SEND, code, message)])
    worker = TelegramAccount(account["id"], telegram_accounts.PgAccountState(pool), sender, pacing=(0, 0))
    assert (await worker.send(campaign_id, "lead_one", "Hi")).outcome == ACCOUNT_UNAVAILABLE
    assert (await account_state(pool, account["id"]))["status"] == "banned"


async def test_a_lead_level_failure_is_the_lead_s_and_counts(pool, telethon, org_and_campaign):
    org_id, campaign_id = org_and_campaign
    account = await insert_account(pool, org_id)
    sender, _ = telethon([fake.resolve(LEAD), fake.fail(SEND, 403, "USER_PRIVACY_RESTRICTED")])
    worker = TelegramAccount(account["id"], telegram_accounts.PgAccountState(pool), sender, pacing=(0, 0))
    result = await worker.send(campaign_id, "lead_one", "Hi")
    assert result.outcome == "privacy_restricted" and not result.channel_blocked
    assert (await account_state(pool, account["id"]))["daily_message_count"] == 1


# --- the account actor (in-process, without Ray) ----------------------------------------------------


@pytest.fixture
def telegram_settings(settings):
    return dataclasses.replace(settings, telegram_api_id=API_ID, telegram_api_hash=API_HASH,
                               telegram_pacing_override=(0.0, 0.0))


@pytest.fixture
async def actors():
    """Factory: TelegramAccountActor instances outside Ray; their idle timers and pools are cleaned up."""
    made = []

    def make(account_id, settings) -> remote.TelegramAccountActor:
        made.append(remote.TelegramAccountActor(str(account_id), settings))
        return made[-1]

    yield make
    for actor in made:
        if actor._idle is not None:
            actor._idle.cancel()
        if actor.account is not None and hasattr(actor.account.sender, "close"):
            await actor.account.sender.close()
        if actor._pool is not None:
            await actor._pool.close()


async def test_the_actor_builds_its_sender_from_the_decrypted_session(pool, telegram_settings):
    plain = fake.session_string()
    account = await factories.insert_telegram_account(
        pool, None, status="active", session=crypto.encrypt(telegram_settings.secret_key, plain))
    sender = await senders.telegram_sender(telegram_settings, pool, account["id"])
    assert isinstance(sender, telegram.TelethonSender)
    assert sender.client.session.save() == plain and not sender.client.is_connected()


async def test_the_actor_sends_with_its_own_session_and_disconnects_when_idle(
        pool, telegram_settings, org_and_campaign, actors, monkeypatch):
    org_id, campaign_id = org_and_campaign
    account = await insert_account(pool, org_id)
    server = fake.FakeTelegram([fake.resolve(LEAD), fake.send(9)])
    build_client = telegram.build_client

    def build_with_fake(*args):
        client = build_client(*args)
        fake.attach(client, server)
        return client

    monkeypatch.setattr(telegram, "build_client", build_with_fake)
    exited = asyncio.Event()
    monkeypatch.setattr(remote.ActorBase, "_exit", lambda self: exited.set())
    actor = actors(account["id"], telegram_settings)
    actor.idle_seconds = 0
    assert await actor.send(str(campaign_id), "lead_one", "Hi") == SendResult("sent", provider_id="5001:9")
    await asyncio.wait_for(exited.wait(), timeout=5)
    assert not server.is_connected() and server.connections == 1


@pytest.mark.parametrize("case, outcome, error", [
    ("sandbox session", ACCOUNT_UNAVAILABLE, "Telegram account has no session: log it in with `outreach telegram add`"),
    ("changed secret key", "not_sent", "cannot decrypt Telegram session: was OUTREACH_SECRET_KEY changed?"),
    ("no API id", "not_sent", "Telegram provider is not configured: set TELEGRAM_API_ID and TELEGRAM_API_HASH"),
])
async def test_an_account_that_cannot_send_refuses_without_counting(
        pool, telegram_settings, org_and_campaign, actors, case, outcome, error):
    org_id, campaign_id = org_and_campaign
    settings = telegram_settings
    if case == "sandbox session":
        account = await factories.insert_telegram_account(pool, org_id, status="active", session="sandbox")
    else:
        account = await insert_account(pool, org_id, secret_key="an older key" if case == "changed secret key"
                                       else settings.secret_key)
    if case == "no API id":
        settings = dataclasses.replace(settings, telegram_api_id=None, telegram_api_hash=None)
    result = await actors(account["id"], settings).send(str(campaign_id), "lead_one", "Hi")
    assert (result.outcome, result.error, result.channel_blocked) == (outcome, error, True)
    assert (await account_state(pool, account["id"]))["daily_message_count"] == 0


async def test_a_resolved_username_is_kept_for_the_account_across_actor_restarts(pool):
    from outreach.storage.telegram_accounts import PgPeers

    account = await pool.fetchval("INSERT INTO telegram_accounts (phone, session) VALUES ('+380500000077', 's') "
                                  "RETURNING id")
    senders = []
    try:
        for script in ([fake.resolve(LEAD), fake.send(1)], [fake.send(2)]):  # the second process never resolves
            client = telegram.build_client(fake.session_string(), API_ID, API_HASH)
            server = fake.attach(client, fake.FakeTelegram(script))
            senders.append(telegram.TelethonSender(client, peers=PgPeers(pool, account)))
            assert (await senders[-1].send_message("@Lead_One", "Hi")).ok
            assert server.script == []
    finally:
        for sender in senders:
            await sender.close()
    await pool.execute("UPDATE telegram_peers SET resolved_at = now() - interval '31 days'")
    assert await PgPeers(pool, account).get("lead_one") is None  # a username can change hands: resolve again
