"""The org's Telegram accounts over HTTP and PostgreSQL."""
from __future__ import annotations

import asyncio
import datetime
import zoneinfo

import orjson

from outreach.actors.routing import AccountTelegramDispatcher
from outreach.actors.telegram_account import ACCOUNT_UNAVAILABLE, TelegramAccount
from outreach.runtime.pacing import Warmup
from outreach.runtime.ports import SendJob, SendResult
from outreach.storage import db, telegram_accounts
from tests.factories import insert_campaign, insert_telegram_account

BASE = "/api/dashboard/telegram/accounts"
T0 = datetime.datetime(2026, 3, 24, 10, 0, tzinfo=datetime.timezone.utc)
ACCOUNT_KEYS = {"id", "phone", "username", "displayName", "status", "dailyMessageCount", "maxDailyMessages",
                "effectiveDailyLimit", "lastMessageAt", "createdAt"}


def today_in(zone: str) -> datetime.date:
    return datetime.datetime.now(zoneinfo.ZoneInfo(zone)).date()


async def test_lists_assigned_accounts_newest_first_without_session(api, other, pool):
    old = await insert_telegram_account(pool, api.org_id, phone="+380500000001", created_at=T0, username="sales1",
                                        display_name="Sales One", status="active", daily_message_count=3,
                                        daily_count_day=today_in("UTC"), max_daily_messages=20,
                                        last_message_at=T0 + datetime.timedelta(hours=1))
    new = await insert_telegram_account(pool, api.org_id, phone="+380500000002",
                                        created_at=T0 + datetime.timedelta(days=1))
    await insert_telegram_account(pool, other.org_id, phone="+380500000003")
    await insert_telegram_account(pool, None, phone="+380500000004")
    reply = await api.get(BASE)
    assert reply.status == 200 and set(reply.body) == {"accounts"}
    assert [account["id"] for account in reply.body["accounts"]] == [str(new["id"]), str(old["id"])]
    assert all(set(account) == ACCOUNT_KEYS for account in reply.body["accounts"])
    assert reply.body["accounts"][1] == {
        "id": str(old["id"]), "phone": "+380500000001", "username": "sales1", "displayName": "Sales One",
        "status": "active", "dailyMessageCount": 3, "maxDailyMessages": 20, "effectiveDailyLimit": 20,
        "lastMessageAt": "2026-03-24T11:00:00.000Z", "createdAt": "2026-03-24T10:00:00.000Z",
    }
    assert reply.body["accounts"][0]["status"] == "warming_up"
    assert reply.body["accounts"][0]["maxDailyMessages"] == 10 and reply.body["accounts"][0]["dailyMessageCount"] == 0
    assert reply.body["accounts"][0]["effectiveDailyLimit"] == 0  # not activated: campaigns skip it
    assert b"secret-session" not in orjson.dumps(reply.body)
    assert [account["phone"] for account in (await other.get(BASE)).body["accounts"]] == ["+380500000003"]


async def test_a_count_from_an_earlier_day_reads_as_zero(api, pool):
    zone = "Pacific/Kiritimati"  # UTC+14: its day differs from the UTC day for ten hours of every day
    rows = {
        "today_utc": ("UTC", today_in("UTC"), 4),
        "yesterday_utc": ("UTC", today_in("UTC") - datetime.timedelta(days=1), 0),
        "never": ("UTC", None, 0),
        "today_local": (zone, today_in(zone), 4),
        "yesterday_local": (zone, today_in(zone) - datetime.timedelta(days=1), 0),
        "unknown_zone": ("Mars/Olympus", today_in("UTC"), 4),
    }
    for username, (day_timezone, day, _) in rows.items():
        await insert_telegram_account(pool, api.org_id, username=username, day_timezone=day_timezone,
                                      daily_count_day=day, daily_message_count=4)
    accounts = (await api.get(BASE)).body["accounts"]
    counts = {account["username"]: account["dailyMessageCount"] for account in accounts}
    assert counts == {username: expected for username, (_, _, expected) in rows.items()}
    stored = await pool.fetch("SELECT daily_message_count FROM telegram_accounts")
    assert {row["daily_message_count"] for row in stored} == {4}


async def test_bad_input(api, http, pool):
    await insert_telegram_account(pool, api.org_id)
    assert (await api.get(BASE + "?page=abc&assignedOrgId=x")).body["accounts"][0]["status"] == "warming_up"
    for method in ("POST", "PUT", "DELETE"):
        reply = await api.call(method, BASE, json={"phone": "+1"})
        assert reply.status == 405 and set(reply.body) == {"error"}
    async with http.get(BASE) as response:
        assert response.status == 401 and await response.json() == {"error": "Unauthorized"}
    assert await pool.fetchval("SELECT count(*) FROM telegram_accounts") == 1


# --- warm-up and pacing over PostgreSQL ----------------------------------------------------------------

UTC = datetime.timezone.utc


async def test_an_active_account_shows_warming_up_until_its_ramp_reaches_the_limit(api, pool):
    today = today_in("UTC")
    for username, days in (("day_one", 0), ("day_three", 2), ("warm", 7), ("before_warmup", None)):
        started = None if days is None else today - datetime.timedelta(days=days)
        await insert_telegram_account(pool, api.org_id, username=username, status="active", max_daily_messages=40,
                                      warmup_started_on=started)
    accounts = {account["username"]: account for account in (await api.get(BASE)).body["accounts"]}
    shown = {name: (account["status"], account["effectiveDailyLimit"]) for name, account in accounts.items()}
    assert shown == {"day_one": ("warming_up", 5), "day_three": ("warming_up", 15), "warm": ("active", 40),
                     "before_warmup": ("active", 40)}
    assert {account["maxDailyMessages"] for account in accounts.values()} == {40}
    stored = await pool.fetch("SELECT status::text FROM telegram_accounts")
    assert {row["status"] for row in stored} == {"active"}  # computed at each read, never written


async def test_an_account_logged_in_as_active_starts_its_warm_up(api, pool):
    async with db.transaction(pool) as conn:
        row = await telegram_accounts.save_login(conn, "+380 50 000 00 09", "encrypted", "fresh", "Fresh", "active", 30)
        await telegram_accounts.assign_account(conn, str(row["id"]), str(api.org_id))
    assert row["warmup_started_on"] == today_in("UTC") and row["status"] == "active"
    account = (await api.get(BASE)).body["accounts"][0]
    assert (account["status"], account["effectiveDailyLimit"], account["maxDailyMessages"]) == ("warming_up", 5, 30)
    async with db.transaction(pool) as conn:  # logging in again does not restart the ramp
        await pool.execute("UPDATE telegram_accounts SET warmup_started_on = warmup_started_on - 3")
        again = await telegram_accounts.save_login(conn, "+380500000009", "encrypted2", "fresh", "Fresh", "active", None)
    assert again["warmup_started_on"] == today_in("UTC") - datetime.timedelta(days=3)


class Clock:
    def __init__(self, now: datetime.datetime):
        self.current = now

    async def now(self) -> datetime.datetime:
        return self.current


class RecordingSender:
    """The provider edge: records what would have gone to Telegram."""

    def __init__(self):
        self.sent = []

    async def send_message(self, username: str, text: str) -> SendResult:
        await asyncio.sleep(0)  # let concurrent sends interleave
        self.sent.append(username)
        return SendResult("sent", provider_id=f"m{len(self.sent)}")


def worker(pool, account_id, clock, sender, spread=False, pacing=(0, 0)) -> TelegramAccount:
    """A TelegramAccount as its actor builds it (each one is a separate actor incarnation)."""
    return TelegramAccount(account_id, telegram_accounts.PgAccountState(pool), sender, pacing, clock=clock,
                           warmup=Warmup(start=5, step=5), spread=spread)


async def active_campaign(pool, org_id, **settings) -> str:
    return str((await insert_campaign(pool, org_id, status="active", channels=["telegram"], settings=settings))["id"])


async def test_the_warm_up_limit_holds_across_restarts_and_concurrent_campaigns(api, pool):
    now = datetime.datetime.now(UTC)
    account = await insert_telegram_account(pool, api.org_id, status="active", max_daily_messages=40,
                                            warmup_started_on=now.date())
    first, second = await active_campaign(pool, api.org_id), await active_campaign(pool, api.org_id)
    clock, sender = Clock(now), RecordingSender()
    incarnations = [worker(pool, account["id"], clock, sender) for _ in range(3)]  # as if restarted meanwhile
    results = await asyncio.gather(*(incarnations[index % 3].send((first, second)[index % 2], f"lead{index}", "Hi")
                                     for index in range(12)))
    assert sum(result.ok for result in results) == 5 == len(sender.sent)
    refused = [result for result in results if not result.ok]
    assert {result.error for result in refused} == {"Telegram account daily limit reached"}
    tomorrow = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time(), tzinfo=UTC)
    assert {result.retry_at for result in refused} == {tomorrow}
    assert await pool.fetchval("SELECT daily_message_count FROM telegram_accounts WHERE id = $1", account["id"]) == 5
    clock.current = tomorrow + datetime.timedelta(hours=9)  # day two of the ramp: 10
    later = [await worker(pool, account["id"], clock, sender).send(first, f"next{index}", "Hi") for index in range(11)]
    assert [result.ok for result in later] == [True] * 10 + [False]


async def test_the_spread_is_kept_in_postgresql_for_every_incarnation(api, pool):
    start = datetime.datetime(2026, 6, 3, 9, 0, tzinfo=UTC)
    account = await insert_telegram_account(pool, api.org_id, status="active", max_daily_messages=50)
    campaign = await active_campaign(pool, api.org_id, sendingWindow={"start": "09:00", "end": "18:00"})
    clock, sender = Clock(start), RecordingSender()
    assert (await worker(pool, account["id"], clock, sender, spread=True, pacing=(30, 90)).send(campaign, "a", "Hi")).ok
    restarted = worker(pool, account["id"], clock, sender, spread=True, pacing=(30, 90))
    paced = await restarted.send(campaign, "b", "Hi")
    assert (paced.outcome, paced.error) == (ACCOUNT_UNAVAILABLE, "Telegram account is pacing its sends")
    assert 618 <= (paced.retry_at - start).total_seconds() <= 678 and sender.sent == ["a"]
    assert paced.retry_at == await pool.fetchval("SELECT next_send_at FROM telegram_accounts")
    clock.current = paced.retry_at
    assert (await restarted.send(campaign, "b", "Hi")).ok and sender.sent == ["a", "b"]


class InProcessAccounts:
    """routing.EntityActors without Ray: each account's TelegramAccount in this process."""

    def __init__(self, pool, clock, sender):
        self.pool, self.clock, self.sender, self.workers = pool, clock, sender, {}

    async def send_telegram(self, account_id, campaign_id, username, text) -> SendResult:
        if account_id not in self.workers:
            self.workers[account_id] = worker(self.pool, account_id, self.clock, self.sender, spread=True,
                                              pacing=(30, 90))
        return await self.workers[account_id].send(campaign_id, username, text)


async def test_the_dispatcher_says_when_the_first_account_may_send_again(api, other, pool):
    start = datetime.datetime(2026, 6, 3, 9, 0, tzinfo=UTC)
    accounts = [await insert_telegram_account(pool, api.org_id, status="active", max_daily_messages=limit)
                for limit in (10, 30)]
    await insert_telegram_account(pool, other.org_id, status="active", max_daily_messages=1000)  # not this org's
    campaign = await active_campaign(pool, api.org_id, sendingWindow={"start": "09:00", "end": "18:00"})
    clock, sender = Clock(start), RecordingSender()
    dispatcher = AccountTelegramDispatcher(InProcessAccounts(pool, clock, sender), pool, api.org_id,
                                           Warmup(start=5, step=5), clock)
    job = SendJob(campaign, str(api.org_id), {"telegram_username": "lead"}, "telegram", "k", None, "Hi")
    assert (await dispatcher.dispatch(job)).ok and (await dispatcher.dispatch(job)).ok  # one on each account
    waiting = await dispatcher.dispatch(job)
    assert (waiting.outcome, waiting.channel_blocked, waiting.error) == (
        "not_sent", True, "No Telegram account with capacity today")
    next_sends = await pool.fetch("SELECT next_send_at FROM telegram_accounts WHERE assigned_org_id = $1",
                                  api.org_id)
    assert waiting.retry_at == min(row["next_send_at"] for row in next_sends)
    assert 9 * 3600 / 30 - 30 <= (waiting.retry_at - start).total_seconds() <= 9 * 3600 / 30 + 30
    used = await pool.fetch("SELECT id FROM telegram_accounts WHERE last_message_at IS NOT NULL")
    assert len(sender.sent) == 2 and {row["id"] for row in used} == {account["id"] for account in accounts}
