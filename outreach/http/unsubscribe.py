"""The public unsubscribe link of every campaign email: `/u/{token}`.

GET shows one line asking to confirm (link scanners and previews fetch URLs, so a GET changes nothing);
POST unsubscribes, from that page's button or from the mailbox's RFC 8058 one-click request
(`List-Unsubscribe=One-Click`). The token is signed with the server's secret key and names the
organization and the address (runtime.optout); a forged or altered one is a 400 and changes nothing.
Unsubscribing twice is the same as once.
"""
from __future__ import annotations

import html

from aiohttp import web

from outreach.http import keys, params, validation, wire
from outreach.runtime import errors, optout
from outreach.storage import db, orgs, suppressions

PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Unsubscribe</title><body style="font-family:sans-serif;margin:3em">
<form method="post" id="f">Stop emails from {org} to {address}? <button>Unsubscribe</button></form>
<script>document.getElementById("f").onsubmit=async e=>{{e.preventDefault();
const r=await fetch(location.href,{{method:"POST"}});
e.target.textContent=r.ok?"Done: {address} will not be contacted again.":"Something went wrong; try again."}}</script>
</body></html>"""


async def token_owner(request: web.Request) -> tuple[dict, str]:
    """The organization and address the token names; Invalid when forged, altered or of no organization."""
    org_id, address = optout.read_unsubscribe_token(request.app[keys.SETTINGS].secret_key,
                                                    request.match_info["token"])
    async with db.connection(request.app[keys.DB]) as conn:
        try:
            org = await orgs.get_org(conn, org_id)
        except errors.NotFound:
            raise errors.Invalid(optout.INVALID_TOKEN) from None
    return org, address


@params.answers(200, media_type="text/html")
async def confirm_page(request: web.Request) -> web.Response:
    org, address = await token_owner(request)
    page = PAGE.format(org=html.escape(org["name"]), address=html.escape(address))
    return web.Response(text=page, content_type="text/html", headers={"X-Robots-Tag": "noindex"})


class Unsubscribed(validation.Reply):
    success: bool
    email: str


@params.answers(200, Unsubscribed)
async def unsubscribe(request: web.Request) -> web.Response:
    org, address = await token_owner(request)
    async with db.transaction(request.app[keys.DB]) as conn:
        await suppressions.add_entries(conn, org["id"], [("email", address)], "unsubscribe")
    return wire.json_response({"success": True, "email": address})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/u/{token}", confirm_page)
    router.add_post("/u/{token}", unsubscribe)
