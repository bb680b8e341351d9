"""The live page: a static page (no build step, no CDN), a self-hoster's dashboard over the existing API routes:
pick leads, create a campaign, write its templates and sequence steps, execute, start, pause, and watch it over
the websocket feed."""
from __future__ import annotations

import functools
import importlib.resources

from aiohttp import web

from outreach.http import params

SECURITY_HEADERS = {
    # Everything the page needs comes from this origin; inline script and style are the page itself.
    "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "connect-src 'self' ws: wss:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@functools.cache
def live_page() -> str:
    return (importlib.resources.files("outreach.http") / "static" / "live.html").read_text()


@params.answers(200, media_type="text/html")
async def serve_live(request: web.Request) -> web.Response:
    return web.Response(text=live_page(), content_type="text/html", headers=SECURITY_HEADERS)


@params.answers(302, media_type="")
async def redirect_home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/live")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", redirect_home)
    router.add_get("/live", serve_live)
