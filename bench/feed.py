"""The live feed at scale: delay from an event's publication to its receipt by every websocket watcher.

Run: python bench/feed.py [--watchers 1000] [--campaigns 100] [--per-campaign 10] [--clients 4] [--seconds 10]

Builds a throwaway database (outreach_bench_feed), starts the API in its own process (no Ray: the feed needs
PostgreSQL for the snapshot and Redis for the stream), and opens the websockets from --clients other
processes, so the watchers are not what is measured. This process then publishes events to the campaigns'
streams the way a running campaign does (storage.events.publish: a result batch of 50 leads and a progress
event per batch), each stamped with its publication time; every watcher records receipt minus publication.
Scenarios, in one run: 1 watcher of one campaign (the floor), --watchers of one campaign, and --campaigns
campaigns watched by --per-campaign each. It also reads the API process's CPU time and RSS from /proc with
--watchers connections open and idle. Redis: TEST_REDIS_URL (default db 11), flushed first.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import asyncpg
import redis.asyncio as aioredis

import machine
from outreach.storage import api_keys, events, migrate

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_URL = "postgresql://postgres@127.0.0.1:5432/outreach_bench_feed"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
SERVER = """
import asyncio, sys
from aiohttp import web
from outreach.http.app import Deps, build_app
from outreach.runtime.config import Settings
from outreach.storage import db
from outreach.storage.redis_store import redis_ctx

async def main(url, redis_url):
    settings = Settings(database_url=url, redis_url=redis_url, secret_key="bench")
    async with db.pool_ctx(url, min_size=2, max_size=10) as pool, redis_ctx(redis_url) as redis:
        runner = web.AppRunner(build_app(settings, Deps(pool=pool, redis=redis)), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""
CLIENT = """
import asyncio, json, sys, time
import aiohttp, orjson

async def watch(http, url, ready, delays):
    async with http.ws_connect(url, max_msg_size=0) as socket:
        await socket.receive()  # the snapshot
        ready.release()
        async for message in socket:
            event = orjson.loads(message.data)
            if event["type"] == "done":
                return
            delays.append(time.time() - event["publishedAt"])

async def main(base, token, paths):
    delays, ready = [], asyncio.Semaphore(0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     headers={"Authorization": "Bearer " + token}) as http:
        tasks = [asyncio.create_task(watch(http, base + path, ready, delays)) for path in paths]
        for _ in tasks:
            await ready.acquire()
        print("ready", flush=True)
        await asyncio.gather(*tasks)
    print(json.dumps(delays), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.stdin.readline())))
"""
RESULTS = [{"leadId": f"00000000-0000-0000-0000-{n:012d}", "leadName": f"Lead {n}", "channel": "email",
            "status": "sent"} for n in range(50)]


async def prepare(campaigns: int) -> tuple[list[str], str]:
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute("DROP DATABASE IF EXISTS outreach_bench_feed WITH (FORCE)")
    await admin.execute("CREATE DATABASE outreach_bench_feed")
    await admin.close()
    await migrate.migrate(BENCH_URL)
    conn = await asyncpg.connect(BENCH_URL)
    try:
        org = await conn.fetchval("INSERT INTO organizations (name, kind) VALUES ('feed', 'local') RETURNING id")
        _, key = await api_keys.create_key(conn, org, "bench")
        ids = [str(await conn.fetchval("INSERT INTO campaigns (org_id, name, status) VALUES ($1, $2, 'active') "
                                       "RETURNING id", org, f"c{n}")) for n in range(campaigns)]
    finally:
        await conn.close()
    return ids, key


def process_usage(pid: int) -> tuple[float, int]:
    """CPU seconds used so far and resident memory in bytes."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss


async def open_clients(base: str, key: str, paths: list[str], clients: int) -> list:
    procs = []
    for part in range(clients):
        share = paths[part::clients]
        if not share:
            continue
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLIENT, base, key,
                                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=2 ** 28)
        proc.stdin.write((json.dumps(share) + "\n").encode())
        await proc.stdin.drain()
        procs.append(proc)
    for proc in procs:
        assert (await proc.stdout.readline()).strip() == b"ready"
    return procs


async def publish(redis, campaign_ids: list[str], seconds: float, batches_per_second: float) -> int:
    """Each campaign publishes a result batch and a progress event per batch, as a run does."""
    published, interval, ends = 0, 1 / batches_per_second, time.perf_counter() + seconds
    while time.perf_counter() < ends:
        tick = time.perf_counter()
        for campaign_id in campaign_ids:
            now = time.time()
            await events.publish(redis, campaign_id, [
                {"type": "result", "results": RESULTS, "publishedAt": now},
                {"type": "progress", "processed": published, "publishedAt": now}])
            published += 2
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))
    for campaign_id in campaign_ids:
        await events.publish(redis, campaign_id, [{"type": "done"}])
    return published


async def scenario(label, base, key, server_pid, redis, watched: dict[str, int], arguments) -> None:
    paths = [f"/api/dashboard/campaigns/{cid}/progress" for cid, count in watched.items() for _ in range(count)]
    cpu_before, rss_before = process_usage(server_pid)
    started = time.perf_counter()
    procs = await open_clients(base, key, paths, arguments.clients)
    connect_s = time.perf_counter() - started
    cpu_open, rss_open = process_usage(server_pid)
    await asyncio.sleep(arguments.idle_seconds)  # idle: what open connections cost by themselves
    cpu_idle = process_usage(server_pid)[0] - cpu_open
    published = await publish(redis, list(watched), arguments.seconds, arguments.batches_per_second)
    cpu_after_publish = process_usage(server_pid)[0]
    delays = []
    for proc in procs:
        delays += json.loads((await proc.stdout.readline()).decode())
        await proc.wait()
    delays.sort()
    p50, p99 = statistics.median(delays) * 1000, delays[int(len(delays) * 0.99) - 1] * 1000
    expected = published * len(paths) // len(watched)
    print(f"{label:<34}{len(paths):>9,}{published:>10,}{len(delays) / max(1, expected):>9.0%}{p50:>9.1f}{p99:>9.1f}"
          f"{delays[-1] * 1000:>9.0f}{connect_s:>10.1f}{(cpu_after_publish - cpu_idle - cpu_open) / arguments.seconds:>10.0%}"
          + (f"{100 * cpu_idle / arguments.idle_seconds * 1000 / len(paths):>11.1f}%"
             f"{(rss_open - rss_before) / 2 ** 20 * 1000 / len(paths):>14.1f}" if len(paths) >= 100 else
             f"{'-':>12}{'-':>14}"))


async def main(arguments) -> None:
    print(await machine.describe(ADMIN_URL))
    redis = aioredis.from_url(REDIS_URL)
    await redis.flushdb()
    ids, key = await prepare(arguments.campaigns + 2)
    server = subprocess.Popen([sys.executable, "-c", SERVER, BENCH_URL, REDIS_URL], stdout=subprocess.PIPE)
    try:
        base = f"ws://127.0.0.1:{int(server.stdout.readline())}"
        print(f"{'scenario':<34}{'watchers':>9}{'events':>10}{'got':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
              f"{'open s':>10}{'API CPU':>10}{'idle CPU/1k':>12}{'RSS MiB/1k':>14}")
        scenarios = [("1 watcher, 1 campaign (floor)", {ids[0]: 1}),
                     (f"{arguments.watchers} watchers, 1 campaign", {ids[1]: arguments.watchers}),
                     (f"{arguments.campaigns} campaigns x {arguments.per_campaign} watchers",
                      {cid: arguments.per_campaign for cid in ids[2:2 + arguments.campaigns]})]
        for label, watched in scenarios:
            await scenario(label, base, key, server.pid, redis, watched, arguments)
        print("\nevents: published per scenario; got: deliveries / (events x watchers); API CPU: share of one core "
              "while publishing; idle CPU (of one core) and RSS growth with the scenario's sockets open and nothing published, per 1,000 sockets")
    finally:
        server.terminate()
        server.wait()
        await redis.flushdb()
        await redis.aclose()
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute("DROP DATABASE IF EXISTS outreach_bench_feed WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--per-campaign", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4, help="watcher processes")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per scenario")
    parser.add_argument("--batches-per-second", type=float, default=10.0, help="per campaign (a result and a progress each)")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
