"""The websocket progress feed: a snapshot, then the campaign's events from its Redis Stream.

One reader per campaign per process (StreamHub) serves every watcher of that campaign, so many
dashboards do not multiply the Redis reads. A client that reconnects with `?after=<cursor>` first
catches up from the stream itself, then joins the live feed; ids already sent are skipped, so
nothing is missed and nothing repeats.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

import orjson
from aiohttp import WSCloseCode, web
from pydantic import Field

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal, takes_query_token
from outreach.storage import campaigns, db, events, runs

log = logging.getLogger(__name__)
BLOCK_MS = 1000
QUEUE_SIZE = 10_000


class ProgressFeedQuery(validation.Model):
    textual = True
    after: Annotated[validation.Text(pattern="[0-9]{1,20}(?:-[0-9]{1,20})?", check=events.valid_cursor), Field(
        description="the cursor of the last event seen: a reconnecting client misses nothing")] = None
    token: Annotated[str, Field(
        description="the session token or API key, for browsers that cannot set headers on a websocket")] = None


def cursor_key(cursor: str) -> tuple[int, int]:
    head, _, tail = cursor.partition("-")
    return int(head), int(tail or 0)


class StreamHub:
    def __init__(self, redis):
        self.redis = redis
        self.watchers: dict[str, set[asyncio.Queue]] = {}
        self.readers: dict[str, asyncio.Task] = {}
        self.reads = 0  # XREAD calls made, for tests and metrics

    @contextlib.asynccontextmanager
    async def watch(self, campaign_id: str, start: str):
        """A queue of (id, event) entries after `start`, fed by this campaign's one reader."""
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.watchers.setdefault(campaign_id, set()).add(queue)
        if campaign_id not in self.readers:
            self.readers[campaign_id] = asyncio.create_task(self._read(campaign_id, start))
        try:
            yield queue
        finally:
            self.watchers[campaign_id].discard(queue)
            if not self.watchers[campaign_id]:
                del self.watchers[campaign_id]
                self.readers.pop(campaign_id).cancel()

    async def _read(self, campaign_id: str, start: str) -> None:
        key, cursor = events.stream_key(campaign_id), start
        while True:
            try:
                self.reads += 1
                replies = await events.read_after(self.redis, {key: cursor}, BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis hiccup must not end every watcher's feed
                log.exception("progress reader for campaign %s failed; retrying", campaign_id)
                await asyncio.sleep(1)
                continue
            for _, entries in replies:
                for entry in entries:
                    cursor = entry[0]
                    self._deliver(campaign_id, entry)

    def _deliver(self, campaign_id: str, entry) -> None:
        for queue in list(self.watchers.get(campaign_id, ())):
            if not queue.full():  # a watcher this far behind reconnects with ?after= and catches up
                queue.put_nowait(entry)

    async def close(self) -> None:
        for task in self.readers.values():
            task.cancel()
        await asyncio.gather(*self.readers.values(), return_exceptions=True)


@takes_query_token
@params.accepts(query=ProgressFeedQuery)
@params.answers(101, media_type="")
async def progress_feed(request: web.Request) -> web.WebSocketResponse:
    """The websocket feed: a snapshot, then the campaign's events, each with its cursor."""
    campaign_id = params.path_id(request, message="Campaign not found")
    after = params.query(request)["after"]
    snapshot = await build_snapshot(request, campaign_id)
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    request.app[keys.SOCKETS].add(socket)
    hub: StreamHub = request.app[keys.HUB]
    async with hub.watch(str(campaign_id), snapshot["cursor"]) as queue:
        await socket.send_str(wire.dumps(snapshot))
        sent = await catch_up(request, socket, campaign_id, after or snapshot["cursor"])
        forward = asyncio.create_task(forward_live(socket, queue, sent))
        try:
            async for _ in socket:  # the client speaks only to close
                pass
        finally:
            forward.cancel()
    return socket


async def build_snapshot(request: web.Request, campaign_id) -> dict:
    redis = request.app[keys.REDIS]
    async with db.connection(request.app[keys.DB]) as conn:
        campaign = await campaigns.get_campaign(conn, principal(request).org_id, campaign_id,
                                                missing="Campaign not found")
        cursor = await events.last_id(redis, campaign_id)
        counts = await runs.run_counts(conn, campaign_id)
    counts.pop("in_progress", None)
    return {"type": "snapshot", "campaignId": str(campaign_id), "status": campaign["status"], **counts,
            "cursor": cursor}


async def catch_up(request: web.Request, socket, campaign_id, after: str) -> str:
    """Send what the stream holds after `after`; return the last id sent."""
    redis, key, last = request.app[keys.REDIS], events.stream_key(campaign_id), after
    while True:
        entries = await redis.xrange(key, min=f"({last}", count=1000)
        if not entries:
            return last
        for entry_id, fields in entries:
            last = events.decode_id(entry_id)
            await socket.send_str(wire.dumps({**wire_event(fields), "cursor": last}))


def wire_event(fields: dict) -> dict:
    return orjson.loads(fields[b"data"])


async def forward_live(socket, queue: asyncio.Queue, sent: str) -> None:
    floor = cursor_key(sent)
    while True:
        entry_id, event = await queue.get()
        if cursor_key(entry_id) <= floor:
            continue
        await socket.send_str(wire.dumps({**event, "cursor": entry_id}))


async def close_sockets(app: web.Application) -> None:
    """On shutdown: tell every watcher to reconnect elsewhere (1001 going away); they resume with ?after=."""
    for socket in list(app[keys.SOCKETS]):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/campaigns/{id}/progress", progress_feed)
