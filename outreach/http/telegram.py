"""Telegram routes: the pool accounts assigned to the org (read-only; sessions never leave storage).

`status` is `warming_up` while an active account's warm-up ramp is below its `maxDailyMessages` (computed at
each read: the ramp ends by itself), and `effectiveDailyLimit` is what it may send today in all."""
from __future__ import annotations

import datetime
import uuid

from aiohttp import web

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal
from outreach.storage import db, telegram_accounts


class TelegramAccount(validation.Reply):
    id: uuid.UUID
    phone: str
    username: str | None
    display_name: str | None
    status: validation.one_of(("warming_up", "active", "assigned", "banned", "cooldown"))
    daily_message_count: int
    max_daily_messages: int
    effective_daily_limit: int
    last_message_at: datetime.datetime | None
    created_at: datetime.datetime


class TelegramAccountList(validation.Reply):
    accounts: list[TelegramAccount]


@params.answers(200, TelegramAccountList)
async def list_accounts(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await telegram_accounts.list_org_accounts(conn, principal(request).org_id,
                                                         warmup=request.app[keys.SETTINGS].telegram_warmup)
    return wire.json_response({"accounts": [wire.to_wire(row) for row in rows]})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/telegram/accounts", list_accounts)
