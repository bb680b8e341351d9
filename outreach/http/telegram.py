"""Telegram routes: the pool accounts assigned to the org (read-only; sessions never leave storage).

`status` is `warming_up` while an active account's warm-up ramp is below its `maxDailyMessages` (computed at
each read: the ramp ends by itself), and `effectiveDailyLimit` is what it may send today in all."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, schema, wire
from outreach.http.auth import principal
from outreach.storage import db, telegram_accounts


ACCOUNT = schema.reply("TelegramAccount", {
    "id": schema.Uuid(), "phone": schema.Text(), "username": schema.Text(), "displayName": schema.Text(),
    "status": schema.Text(enum=("warming_up", "active", "assigned", "banned", "cooldown")),
    "dailyMessageCount": schema.Integer(), "maxDailyMessages": schema.Integer(), "effectiveDailyLimit": schema.Integer(),
    "lastMessageAt": schema.DateTime(), "createdAt": schema.DateTime(),
}, ("username", "displayName", "lastMessageAt"))


@params.answers(200, schema.reply("TelegramAccountList", {"accounts": schema.Array(schema.Object(ACCOUNT))}))
async def list_accounts(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        rows = await telegram_accounts.list_org_accounts(conn, principal(request).org_id,
                                                         warmup=request.app[keys.SETTINGS].telegram_warmup)
    return wire.json_response({"accounts": [wire.to_wire(row) for row in rows]})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/telegram/accounts", list_accounts)
