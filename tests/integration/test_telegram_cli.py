"""`outreach telegram add | assign | list`: onboarding accounts into the pool.

assign and list run as a user runs them (a subprocess). add logs in interactively over the network,
so it is driven in-process through the same service function, with Telethon's client wired to the
scripted sender and the prompts answered by the test.
"""
from __future__ import annotations

import dataclasses
import datetime

import pytest
from telethon.sessions import StringSession
from telethon.tl import functions

from outreach import service
from outreach.runtime import crypto, errors
from outreach.providers import telegram
from outreach.storage import db, telegram_accounts
from tests import factories
from tests.fakes import telegram as fake
from tests.integration.test_cli import run_cli
from tests.conftest import TEST_REDIS_URL

API_ID, API_HASH = 12345, "0123456789abcdef0123456789abcdef"
ACCOUNTS = "/api/dashboard/telegram/accounts"


@pytest.fixture
def cli_env(database_url, tmp_path) -> dict:
    return {"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "XDG_DATA_HOME": str(tmp_path), "TELEGRAM_API_ID": "",
            "TELEGRAM_API_HASH": ""}


@pytest.fixture
def telegram_settings(settings):
    return dataclasses.replace(settings, telegram_api_id=API_ID, telegram_api_hash=API_HASH)


def login_client(script, **options) -> tuple:
    client = telegram.build_client(None, API_ID, API_HASH)
    return client, fake.attach(client, fake.FakeTelegram(script, me=None, **options))


async def add(settings, client, codes: list[str], passwords: list[str] = (), phone: str = "+380 50 123-45-67",
              active: bool = False, daily_limit: int | None = None) -> dict:
    ask_code, _ = fake.answering(list(codes))
    ask_password, _ = fake.answering(list(passwords))
    return await service.add_telegram_account(settings, phone, active=active, daily_limit=daily_limit,
                                              ask_code=ask_code, ask_password=ask_password, client=client)


async def stored(pool, account_id) -> dict:
    return dict(await pool.fetchrow("SELECT * FROM telegram_accounts WHERE id = $1", account_id))


# --- add -----------------------------------------------------------------------------------------


async def test_add_logs_in_with_code_and_password_and_stores_the_session_encrypted(telegram_settings, pool, redis):
    two_factor = fake.TwoFactor("correct horse")
    client, server = login_client([fake.code_sent(), fake.code_sign_in("24680", needs_password=True),
                                   fake.code_sign_in("24680", needs_password=True), *two_factor.attempt(),
                                   *two_factor.attempt()])
    ask_code, codes_shown = fake.answering(["13579", "24680"])
    ask_password, passwords_shown = fake.answering(["wrong horse", "correct horse"])
    row = await service.add_telegram_account(telegram_settings, "+380 50 123-45-67", active=False, daily_limit=None,
                                             ask_code=ask_code, ask_password=ask_password, client=client)
    assert (row["phone"], row["username"], row["display_name"], row["status"], row["max_daily_messages"]) == (
        "+380501234567", "outreach_agent", "Olena Sales", "warming_up", 10)
    assert codes_shown[1].startswith("That code is wrong") and passwords_shown[1].startswith("That password is wrong")
    assert server.requests[0].phone_number == "380501234567"
    saved = await stored(pool, row["id"])
    plain = crypto.decrypt(telegram_settings.secret_key, saved["session"])
    assert saved["session"] != plain and StringSession(plain).auth_key.key == server.auth_key.key
    assert saved["warmup_started_at"] is not None and not server.is_connected()


async def test_an_added_active_account_sends_from_its_actor(telegram_settings, pool, redis):
    from outreach.actors import senders

    client, _ = login_client([fake.code_sent(), fake.code_sign_in("24680")])
    row = await add(telegram_settings, client, ["24680"], active=True, daily_limit=25)
    assert (row["status"], row["max_daily_messages"]) == ("active", 25)
    sender = await senders.telegram_sender(telegram_settings, pool, row["id"])
    lead = fake.user(5001, "lead_one")
    server = fake.attach(sender.client, fake.FakeTelegram([fake.resolve(lead), fake.send(3)]))
    try:
        assert (await sender.send_message("lead_one", "Hi")).ok
    finally:
        await sender.close()
    assert server.connections == 1


async def test_logging_in_again_replaces_the_session_and_keeps_the_organization(telegram_settings, pool, api):
    client, _ = login_client([fake.code_sent(), fake.code_sign_in("11111")])
    first = await add(telegram_settings, client, ["11111"])
    async with db.transaction(pool) as conn:
        await telegram_accounts.assign_account(conn, "+380501234567", "acme")
    old_session = (await stored(pool, first["id"]))["session"]
    client, _ = login_client([fake.code_sent(), fake.code_sign_in("22222")])
    again = await add(telegram_settings, client, ["22222"], phone="380501234567", active=True)
    saved = await stored(pool, first["id"])
    assert again["id"] == first["id"] and saved["session"] != old_session
    assert saved["assigned_org_id"] == api.org_id and saved["status"] == "active"
    assert [account["id"] for account in (await api.get(ACCOUNTS)).body["accounts"]] == [str(first["id"])]


async def test_a_wrong_code_three_times_stores_nothing(telegram_settings, pool, redis):
    client, server = login_client([fake.code_sent()] + [fake.code_sign_in("24680")] * 3)
    with pytest.raises(errors.Invalid, match="The login code was wrong 3 times"):
        await add(telegram_settings, client, ["1", "2", "3"])
    assert await pool.fetchval("SELECT count(*) FROM telegram_accounts") == 0 and not server.is_connected()


@pytest.mark.parametrize("code, message, error, text", [
    (400, "PHONE_NUMBER_INVALID", errors.Invalid, "Telegram says this phone number is invalid"),
    (400, "PHONE_NUMBER_BANNED", errors.Invalid, "Telegram banned this phone number"),
    (420, "FLOOD_WAIT_3600", errors.RateLimited, "Telegram asks to wait 3600 s before logging in again"),
    (400, "API_ID_INVALID", errors.ConfigError, "Telegram refused TELEGRAM_API_ID / TELEGRAM_API_HASH"),
])
async def test_telegram_refusing_the_login_is_one_clear_error(telegram_settings, pool, redis, code, message, error,
                                                              text):
    client, server = login_client([fake.fail(functions.auth.SendCodeRequest, code, message)])
    with pytest.raises(error) as caught:
        await add(telegram_settings, client, [])
    assert str(caught.value) == text and not server.is_connected()


@pytest.mark.parametrize("args, env, message", [
    (("--phone", "+380501234567"), {}, "TELEGRAM_API_ID and TELEGRAM_API_HASH are required to log in a Telegram "
                                       "account"),
    (("--phone", "+380501234567", "--daily-limit", "0"), {"TELEGRAM_API_ID": "1", "TELEGRAM_API_HASH": "h"},
     "--daily-limit must be at least 1"),
])
async def test_add_refuses_what_cannot_work_before_asking_for_a_code(cli_env, args, env, message):
    code, out, err = await run_cli("telegram", "add", *args, env={**cli_env, **env})
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1] == f"outreach: configuration error: {message}"


# --- assign and list -----------------------------------------------------------------------------


async def test_assign_by_phone_to_a_self_hosted_organization(cli_env, pool, api, other):
    account = await factories.insert_telegram_account(pool, None, phone="+380501112233", status="active")
    code, out, err = await run_cli("telegram", "assign", "+380 50 111 22 33", "--org", "acme", env=cli_env)
    assert code == 0, err
    assert out.strip() == f"+380501112233 assigned to acme ({api.org_id})"
    assert [row["id"] for row in (await api.get(ACCOUNTS)).body["accounts"]] == [str(account["id"])]
    assert (await other.get(ACCOUNTS)).body["accounts"] == []


async def test_assign_by_account_id_to_an_organization_id_moves_it(cli_env, pool, api, other):
    account = await factories.insert_telegram_account(pool, api.org_id, status="active")
    code, _, err = await run_cli("telegram", "assign", str(account["id"]), "--org", str(other.org_id), env=cli_env)
    assert code == 0, err
    assert (await api.get(ACCOUNTS)).body["accounts"] == []
    assert [row["id"] for row in (await other.get(ACCOUNTS)).body["accounts"]] == [str(account["id"])]


@pytest.mark.parametrize("account, org, message", [
    ("+380501112233", "no such org", "Organization not found: no such org"),
    ("+380509999999", "acme", "Telegram account not found: +380509999999"),
])
async def test_assign_names_what_it_cannot_find(cli_env, pool, api, account, org, message):
    await factories.insert_telegram_account(pool, None, phone="+380501112233")
    code, _, err = await run_cli("telegram", "assign", account, "--org", org, env=cli_env)
    assert code == 1 and err.strip().splitlines()[-1] == f"outreach: {message}"
    assert await pool.fetchval("SELECT count(*) FROM telegram_accounts WHERE assigned_org_id IS NOT NULL") == 0


async def test_list_shows_every_account_without_its_session(cli_env, pool, api):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    waiting = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    first = await factories.insert_telegram_account(
        pool, api.org_id, phone="+380501110001", username="sales1", status="active", session="gAAAAsecret-token",
        daily_message_count=4, daily_count_day=today, max_daily_messages=20, flood_wait_until=waiting,
        created_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    second = await factories.insert_telegram_account(pool, None, phone="sandbox-1", session="sandbox")
    code, out, err = await run_cli("telegram", "list", env=cli_env)
    assert code == 0, err
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert lines[0] == ["id", "phone", "username", "status", "today", "organization", "session", "paused until"]
    assert lines[1] == [str(first["id"]), "+380501110001", "@sales1", "active", "4/20", "acme", "encrypted",
                        waiting.replace(microsecond=0).isoformat()]
    assert lines[2] == [str(second["id"]), "sandbox-1", "-", "warming_up", "0/10", "-", "sandbox", "-"]
    assert "secret-token" not in out
