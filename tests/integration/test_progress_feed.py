"""The progress feed's fan-out over HTTP, Redis and PostgreSQL (no Ray: events are published as the runner does)."""
from __future__ import annotations

import asyncio

import aiohttp
import orjson

from outreach.http import keys, progress
from outreach.storage import events

BASE = "/api/dashboard/campaigns"


async def open_watchers(http, api, campaign_id: str, count: int) -> list:
    headers = {"Authorization": f"Bearer {api.token}"}
    sockets = [await http.ws_connect(f"{BASE}/{campaign_id}/progress", headers=headers) for _ in range(count)]
    for socket in sockets:
        assert orjson.loads((await socket.receive()).data)["type"] == "snapshot"
    return sockets


async def receive_until_done(socket) -> list[dict]:
    seen = []
    async with asyncio.timeout(30):
        while not seen or seen[-1]["type"] != "done":
            seen.append(orjson.loads((await socket.receive()).data))
    return seen


async def test_every_watcher_gets_every_event_once_in_order_from_one_reader(http, api, redis):
    campaign_id = (await api.post(BASE, json={"name": "watched"})).body["id"]
    sockets = await open_watchers(http, api, campaign_id, 40)
    published = [{"type": "result", "results": [{"leadId": str(n), "status": "sent"}]} for n in range(300)]
    ids = []
    for start in range(0, 300, 50):  # in several batches, as a run publishes them
        ids += await events.publish(redis, campaign_id, published[start:start + 50])
    ids += await events.publish(redis, campaign_id, [{"type": "done", "processed": 300}])
    received = await asyncio.gather(*(receive_until_done(socket) for socket in sockets))
    expected = [{**event, "cursor": cursor} for event, cursor in zip(published + [{"type": "done", "processed": 300}],
                                                                     ids)]
    assert all(seen == expected for seen in received)
    assert len(http.app[keys.HUB].cursors) == 1  # read once for all its watchers
    for socket in sockets:
        await socket.close()


async def test_a_watcher_that_falls_behind_is_closed_with_1013_and_resumes_without_a_gap(http, api, redis):
    campaign_id = (await api.post(BASE, json={"name": "slow"})).body["id"]
    hub = http.app[keys.HUB]
    hub.queue_size = 1  # one waiting batch: the next one finds this watcher behind
    [socket] = await open_watchers(http, api, campaign_id, 1)
    [watcher] = hub.watchers[campaign_id]
    first = await events.publish(redis, campaign_id, [{"type": "progress", "processed": 1}])
    assert orjson.loads((await socket.receive()).data)["cursor"] == first[0]
    watcher.offer([("9999999999999-0", "{}")])  # fills the one place (nothing awaited: the socket cannot take it)
    watcher.offer([("9999999999999-1", "{}")])  # finds it full: this watcher is behind
    closed = await socket.receive()
    assert closed.type.name == "CLOSE" and closed.data == 1013 and watcher.lagging
    async with asyncio.timeout(10):
        while hub.watchers.get(campaign_id):  # the handler leaves the hub as its socket closes
            await asyncio.sleep(0.01)
    hub.queue_size = progress.QUEUE_SIZE
    later = await events.publish(redis, campaign_id, [{"type": "done", "processed": 2}])
    headers = {"Authorization": f"Bearer {api.token}"}
    async with http.ws_connect(f"{BASE}/{campaign_id}/progress?after=0-0", headers=headers) as again:
        assert orjson.loads((await again.receive()).data)["type"] == "snapshot"
        seen = await receive_until_done(again)
    assert [event["cursor"] for event in seen] == first + later


async def test_more_watched_campaigns_than_the_redis_pool_holds_are_read_on_one_connection(http, api, redis):
    """redis-py's pool holds 100 connections; a blocking read per campaign used one each until it ran out."""
    campaign_ids = [(await api.post(BASE, json={"name": f"c{n}"})).body["id"] for n in range(120)]
    headers = {"Authorization": f"Bearer {api.token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as browser:  # 120 sockets at once
        sockets = [await browser.ws_connect(http.make_url(f"{BASE}/{campaign_id}/progress"), headers=headers)
                   for campaign_id in campaign_ids]
        for socket in sockets:
            assert orjson.loads((await socket.receive()).data)["type"] == "snapshot"
        for campaign_id in campaign_ids:
            await events.publish(redis, campaign_id, [{"type": "done", "processed": 1}])
        received = await asyncio.gather(*(receive_until_done(socket) for socket in sockets))
        assert all(seen[-1]["type"] == "done" for seen in received)
        assert len(http.app[keys.HUB].cursors) == 120 and await redis.ping()
        for socket in sockets:
            await socket.close()
