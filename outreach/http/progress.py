"""The websocket progress feed: a snapshot, then the campaign's events from its Redis Stream.

One reader per process (StreamHub: one XREAD over every watched campaign's stream) serves every watcher,
so many dashboards and many campaigns do not multiply the Redis reads or the connections. A client that
reconnects with `?after=<cursor>` first catches up from the stream itself, then joins the live feed; ids
already sent are skipped, so nothing is missed and nothing repeats. Each event is encoded for the wire
once, whatever the number of watchers; a watcher that falls QUEUE_SIZE batches behind is closed with 1013
(try again later) and resumes from its last cursor, so one slow dashboard costs the others nothing.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from aiohttp import WSCloseCode, web
from pydantic import Field

from outreach.http import keys, params, validation, wire
from outreach.http.auth import principal, takes_query_token
from outreach.storage import campaigns, db, events, runs

log = logging.getLogger(__name__)
BLOCK_MS = 100  # how long a newly watched campaign may wait to join the one read
QUEUE_SIZE = 256  # batches (one per XREAD, up to 1,000 events) a watcher may fall behind by


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
    """One XREAD loop per process, over the streams of every watched campaign: one Redis connection however many
    campaigns are watched (one blocking read per campaign held a pooled connection each, and a hundred watched
    campaigns used up the client's pool). Each batch it reads is turned into wire text once and handed to every
    watcher of its campaign as one list, so a watcher wakes once per batch and no event is encoded per watcher."""

    def __init__(self, redis, queue_size: int = QUEUE_SIZE):
        self.redis = redis
        self.queue_size = queue_size  # batches a watcher may fall behind before it is told to resume
        self.watchers: dict[str, set[Watcher]] = {}
        self.cursors: dict[str, str] = {}  # watched campaign -> the last entry id read for it
        self.reader: asyncio.Task | None = None
        self.reads = 0  # XREAD calls made, for tests and metrics

    @contextlib.asynccontextmanager
    async def watch(self, campaign_id: str, start: str):
        """A Watcher fed this campaign's entries after `start` by the process's one reader."""
        watcher = Watcher(asyncio.Queue(self.queue_size))
        self.watchers.setdefault(campaign_id, set()).add(watcher)
        self.cursors.setdefault(campaign_id, start)
        if self.reader is None or self.reader.done():
            self.reader = asyncio.create_task(self._read())
        try:
            yield watcher
        finally:
            self.watchers[campaign_id].discard(watcher)
            if not self.watchers[campaign_id]:
                del self.watchers[campaign_id], self.cursors[campaign_id]

    async def _read(self) -> None:
        """Until no campaign is watched. A campaign watched meanwhile joins at the next read (BLOCK_MS at most)."""
        while self.cursors:
            campaign_of = {events.stream_key(campaign_id): campaign_id for campaign_id in self.cursors}
            streams = {key: self.cursors[campaign_id] for key, campaign_id in campaign_of.items()}
            try:
                self.reads += 1
                reply = await self.redis.xread(streams, block=BLOCK_MS, count=1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis hiccup must not end every watcher's feed
                log.exception("progress reader failed; retrying")
                await asyncio.sleep(1)
                continue
            for key, entries in reply or []:
                self._take(campaign_of.get(events.decode_id(key)), entries)

    def _take(self, campaign_id: str | None, entries: list) -> None:
        if campaign_id not in self.cursors:  # no longer watched
            return
        batch = [(entry_id, wire_text(fields, entry_id)) for entry_id, fields in
                 ((events.decode_id(entry_id), fields) for entry_id, fields in entries)]
        self.cursors[campaign_id] = batch[-1][0]
        for watcher in list(self.watchers.get(campaign_id, ())):
            watcher.offer(batch)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


class Watcher:
    """One socket's place in the feed: batches of (cursor, wire text) waiting to be sent, and whether it fell so
    far behind that its socket is closed (it resumes with ?after= from the last cursor it got: nothing is lost)."""

    def __init__(self, queue: asyncio.Queue):
        self.queue = queue
        self.lagging = False

    def offer(self, batch: list) -> None:
        if self.lagging:
            return
        if self.queue.full():
            self.lagging = True
            self.queue.get_nowait()  # room for the wake-up; the socket is closed, what it held is resent on resume
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(batch)


def wire_text(fields: dict, cursor: str) -> str:
    """The stored event with its cursor, as the client gets it: the stored JSON object with one key appended."""
    data = fields[b"data"].decode()
    return data[:-1] + ("," if data != "{}" else "") + f'"cursor":"{cursor}"}}'


@takes_query_token
@params.accepts(query=ProgressFeedQuery)
@params.answers(101, media_type="")
async def progress_feed(request: web.Request) -> web.WebSocketResponse:
    """The websocket feed: a snapshot, then the campaign's events, each with its cursor."""
    campaign_id = params.path_id(request, message="Campaign not found")
    after = params.query(request)["after"]
    snapshot = await build_snapshot(request, campaign_id)
    socket = web.WebSocketResponse(heartbeat=30, compress=False)  # deflate would compress each event per socket
    await socket.prepare(request)
    request.app[keys.SOCKETS].add(socket)
    hub: StreamHub = request.app[keys.HUB]
    async with hub.watch(str(campaign_id), snapshot["cursor"]) as watcher:
        await socket.send_str(wire.dumps(snapshot))
        sent = await catch_up(request, socket, campaign_id, after or snapshot["cursor"])
        forward = asyncio.create_task(forward_live(socket, watcher, sent))
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
            await socket.send_str(wire_text(fields, last))


async def forward_live(socket, watcher: Watcher, sent: str) -> None:
    """Send each batch as it comes; a watcher that fell behind is closed with the code that says resume."""
    floor = cursor_key(sent)
    while True:
        batch = await watcher.queue.get()
        if batch is None:
            await socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too far behind: resume with ?after=")
            return
        for entry_id, text in batch:
            if cursor_key(entry_id) > floor:
                await socket.send_str(text)


async def close_sockets(app: web.Application) -> None:
    """On shutdown: tell every watcher to reconnect elsewhere (1001 going away); they resume with ?after=."""
    for socket in list(app[keys.SOCKETS]):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/dashboard/campaigns/{id}/progress", progress_feed)
