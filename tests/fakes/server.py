"""A small aiohttp server on 127.0.0.1, the base of every provider fake."""
from __future__ import annotations

from aiohttp import web


class LocalServer:
    def __init__(self):
        self.app = web.Application()
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> "LocalServer":
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"
