"""Scale-out on a Ray cluster of several nodes on this machine: memory per actor, what one node holds, and
campaign throughput with 1 and 2 worker nodes.

Run: python bench/scale_out.py [--campaigns N] [--leads M] [--latency-ms L] [--quick]

A head (no CPUs: it runs only this driver) and worker nodes that advertise `outreach_worker`, every node on
127.0.0.1 (ray.cluster_utils.Cluster), over a throwaway database (outreach_bench_scale_out) and Redis
(TEST_REDIS_URL, else database 12). Sandbox providers.

1. Memory per actor, read from /proc of the actor's process: a campaign actor and a Telegram account actor,
   idle (built, nothing run) and running (peak while a campaign of M leads runs; while 200 Telegram sends go
   through the account). RSS counts the shared libraries in every process; USS (pages only this process holds)
   is what one more actor adds to a node, so capacity is computed from it.
2. What one node holds: the smaller of the memory bound (node memory less Ray's object store (30%) and 1 GiB
   for Ray's own processes, over the running USS) and Ray's CPU bound (node CPUs / the actor's 0.01 CPU).
3. Throughput: N campaigns of M email leads, one organization each, run at once on 1 worker node, then on 2
   (a node added; campaign actors spread over the workers); leads/s, where the actors ran, the actors' CPU
   seconds per node, and how busy the machine's cores were. Both nodes share this machine's cores: when they
   are saturated with one node, a second node on the same cores cannot add throughput; the per-node figures
   say what a second machine would add.
"""
from __future__ import annotations

import os

# Read by Ray when it is imported: every node and connection stays on loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import asyncpg  # noqa: E402
import ray  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

from outreach.actors import remote  # noqa: E402
from outreach.runtime.config import Settings  # noqa: E402
from outreach.storage import migrate  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_URL = "postgresql://postgres@127.0.0.1:5432/outreach_bench_scale_out"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
TEMPLATES = {"email": {"subject": "Hi {{firstName}}", "body": "Hello {{firstName}}, a quick idea for {{company}}."}}
WORKER = {"num_cpus": 2, "resources": {remote.WORKER_RESOURCE: 1000}}
MB = 1024 * 1024
TELEGRAM_SENDS = 200


def patient_node_start(seconds: float = 120.0) -> None:
    """Ray gives a starting node 30 s (hard-coded) to register with the GCS, and a node registers only once its
    Python agents have imported: on 2 busy cores that took 30 s. Retry the check up to `seconds` instead."""
    import ray._private.services as services

    get_node = services.get_node

    def get_node_patiently(*args, **kwargs):
        deadline = time.monotonic() + seconds
        while True:
            try:
                return get_node(*args, **kwargs)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    services.get_node = get_node_patiently


def start_cluster(attempts: int = 3):
    """A head with no CPUs (it runs only this driver) and one worker node: (cluster, node arguments). On 2 busy
    cores a raylet sometimes gives up waiting for its agents (a fatal check in Ray): then what that attempt
    started is stopped and it starts again."""
    for attempt in range(attempts):
        temp_dir = f"/tmp/ray-outreach-bench-scale-{os.getpid()}-{attempt}"
        node = {"node_ip_address": "127.0.0.1", "temp_dir": temp_dir, "include_dashboard": False}
        cluster = None
        try:
            cluster = Cluster(initialize_head=True, head_node_args={**node, "num_cpus": 0})
            cluster.add_node(**node, **WORKER)
            return cluster, node
        except Exception as exc:
            print(f"cluster start {attempt + 1} failed: {exc}", flush=True)
            stop_cluster(cluster, temp_dir)
            if attempt == attempts - 1:
                raise


def add_worker(cluster, node: dict, attempts: int = 3) -> None:
    for attempt in range(attempts):
        try:
            cluster.add_node(**node, **WORKER)
            return
        except Exception as exc:  # what the failed node left is stopped with the cluster (stop_cluster)
            print(f"worker start {attempt + 1} failed: {exc}", flush=True)
            if attempt == attempts - 1:
                raise


def stop_cluster(cluster, temp_dir: str) -> None:
    """Shut the cluster down, then kill by PID whatever this run's nodes left (each names our temp dir)."""
    if cluster is not None:
        cluster.shutdown()
    for pid in started_under(temp_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(temp_dir, ignore_errors=True)


def started_under(temp_dir: str) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                if temp_dir.encode() in cmdline.read():
                    pids.append(int(entry.name))
    return pids


# --- /proc ------------------------------------------------------------------------------------------------


def memory_of(pid: int) -> dict:
    """RSS, PSS and USS in MB (smaps_rollup)."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def node_memory_mb() -> float:
    with open("/proc/meminfo") as meminfo:
        return next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")) / 1024


async def peak_memory_while(pid: int, work) -> dict:
    """Run `work` while sampling the process's memory every 100 ms; the peak of each figure."""
    peak = memory_of(pid)
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=0.1)
        peak = {key: max(value, memory_of(pid)[key]) for key, value in peak.items()}
    await task
    return peak


# --- data ---------------------------------------------------------------------------------------------------


async def reset_database() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute("DROP DATABASE IF EXISTS outreach_bench_scale_out WITH (FORCE)")
    await admin.execute("CREATE DATABASE outreach_bench_scale_out")
    await admin.close()
    await migrate.migrate(BENCH_URL)


async def make_campaign(conn, leads: int, latency_ms: int, channel: str = "email") -> tuple:
    """An organization with `leads` leads in one active campaign; (org id, campaign id)."""
    org_id = await conn.fetchval("INSERT INTO organizations (name, kind, plan) VALUES ('o' || gen_random_uuid(), "
                                 "'local', 'enterprise') RETURNING id")
    await conn.execute("""INSERT INTO leads (org_id, first_name, email, telegram_username, company)
                          SELECT $1, 'Lead' || g, 'lead' || g || '-' || $3 || '@example.com', 'user' || g,
                                 'Company ' || (g % 100) FROM generate_series(1, $2) AS g""", org_id, leads,
                       str(org_id))
    campaign_id = await conn.fetchval(
        """INSERT INTO campaigns (org_id, name, status, channels, channel_priority, settings)
           VALUES ($1, 'scale', 'active', $2::jsonb, $2::jsonb, $3::jsonb) RETURNING id""",
        org_id, json.dumps([channel]), json.dumps({"templates": TEMPLATES, "sandbox": {"latencyMs": latency_ms}}))
    await conn.execute("""WITH moved AS (UPDATE leads SET campaign_id = $2 WHERE org_id = $1 RETURNING id)
                          INSERT INTO campaign_leads (campaign_id, lead_id, org_id) SELECT $2, id, $1 FROM moved""",
                       org_id, campaign_id)
    return org_id, campaign_id


async def make_account(conn, org_id) -> str:
    return await conn.fetchval("INSERT INTO telegram_accounts (phone, session, status, assigned_org_id, "
                               "max_daily_messages) VALUES ('+3805' || lpad((random() * 1e8)::int::text, 8, '0'), "
                               "'sandbox', 'active', $1, 1000000) RETURNING id", org_id)


# --- 1 and 2: memory per actor, what a node holds -----------------------------------------------------------


async def measure_memory(conn, settings: Settings, leads: int) -> dict:
    org_id, campaign_id = await make_campaign(conn, leads, 20)
    handle = remote.campaign_actor(campaign_id, settings)
    pid = await handle.ping.remote()
    figures = {"campaign idle": memory_of(pid)}
    figures["campaign running"] = await peak_memory_while(pid, handle.run.remote())
    account = remote.telegram_actor(await make_account(conn, org_id), settings)
    pid = await account.ping.remote()
    figures["telegram idle"] = memory_of(pid)
    sends = asyncio.gather(*(account.send.remote(None, f"user{index}", "Hello") for index in range(TELEGRAM_SENDS)))
    figures["telegram running"] = await peak_memory_while(pid, sends)
    sent = sum(result.ok for result in await sends)
    assert sent > 0, "no Telegram send went through the account actor"
    for actor in (handle, account):
        ray.kill(actor, no_restart=True)
    return figures


def print_memory(figures: dict) -> None:
    print(f"\n{'actor':<20}{'RSS MB':>9}{'PSS MB':>9}{'USS MB':>9}")
    for label, row in figures.items():
        print(f"{label:<20}{row['rss']:>9.1f}{row['pss']:>9.1f}{row['uss']:>9.1f}")
    print(f"(running: peak while a campaign ran; while {TELEGRAM_SENDS} Telegram sends went through the account)")


def node_capacity(node_mb: float, cpus: int, uss_mb: float) -> dict:
    usable = node_mb * 0.7 - 1024  # Ray's object store takes 30% of memory by default; ~1 GiB for Ray itself
    return {"memory": int(usable // uss_mb), "cpu": int(cpus / remote.ACTOR_CPU)}


def print_capacity(figures: dict) -> None:
    nodes = [(f"this machine ({os.cpu_count()} cores)", node_memory_mb(), os.cpu_count()),
             ("2 vCPU, 4 GiB (c6i.large)", 4096, 2), ("2 vCPU, 8 GiB", 8192, 2), ("4 vCPU, 16 GiB", 16384, 4)]
    print(f"\n{'node':<32}{'campaigns (mem/cpu)':>22}{'accounts (mem/cpu)':>22}")
    for label, memory, cpus in nodes:
        campaigns = node_capacity(memory, cpus, figures["campaign running"]["uss"])
        accounts = node_capacity(memory, cpus, figures["telegram running"]["uss"])
        print(f"{label:<32}{min(campaigns.values()):>8,} ({campaigns['memory']:,}/{campaigns['cpu']:,})"
              f"{min(accounts.values()):>10,} ({accounts['memory']:,}/{accounts['cpu']:,})")
    print("memory bound: (70% of the node less 1 GiB) / running USS; cpu bound: CPUs / 0.01 per actor")


# --- 3: throughput with 1 and 2 worker nodes -----------------------------------------------------------------


async def throughput(conn, settings: Settings, campaigns: int, leads: int, latency_ms: int) -> dict:
    ids = [(await make_campaign(conn, leads, latency_ms))[1] for _ in range(campaigns)]
    await conn.execute("ANALYZE leads; ANALYZE campaign_leads")
    handles = [remote.campaign_actor(campaign_id, settings) for campaign_id in ids]
    pids = await asyncio.gather(*(handle.ping.remote() for handle in handles))  # actors up before the clock starts
    cpu_before, (busy_before, total_before) = [cpu_seconds(pid) for pid in pids], machine_busy()
    started = time.perf_counter()
    summaries = await asyncio.gather(*(handle.run.remote() for handle in handles))
    elapsed = time.perf_counter() - started
    busy_after, total_after = machine_busy()
    assert all(summary["counts"]["processed"] == leads for summary in summaries), [s["counts"] for s in summaries]
    nodes = actor_nodes(ids)
    per_node: dict[str, dict] = {}
    for campaign_id, pid, before in zip(ids, pids, cpu_before):
        row = per_node.setdefault(nodes[str(campaign_id)], {"actors": 0, "cpu_s": 0.0})
        row["actors"] += 1
        row["cpu_s"] += cpu_seconds(pid) - before
    for handle in handles:
        ray.kill(handle, no_restart=True)
    return {"rate": campaigns * leads / elapsed, "seconds": elapsed, "per_node": per_node,
            "busy": (busy_after - busy_before) / (total_after - total_before), "leads": campaigns * leads}


def actor_nodes(campaign_ids) -> dict[str, str]:
    """campaign id -> the node its actor runs on (from Ray's GCS)."""
    wanted = {f"campaign:{campaign_id}": str(campaign_id) for campaign_id in campaign_ids}
    return {wanted[actor["Name"]]: actor["Address"]["NodeID"][:8] for actor in ray._private.state.actors().values()
            if actor["Name"] in wanted and actor["State"] == "ALIVE"}


def print_throughput(rows: list[tuple[int, dict]], campaigns: int, leads: int, latency_ms: int) -> None:
    print(f"\n{campaigns} campaigns x {leads:,} email leads at once, {latency_ms} ms sandbox latency")
    print(f"{'workers':>8}{'leads/s':>10}{'s':>7}{'cores busy':>12}   per node: actors, actor CPU s, actor CPU ms/lead")
    for workers, row in rows:
        nodes = "; ".join(f"{node}: {figures['actors']}, {figures['cpu_s']:.1f} s, "
                          f"{1000 * figures['cpu_s'] / (figures['actors'] * row['leads'] / campaigns):.3f}"
                          for node, figures in sorted(row["per_node"].items()))
        print(f"{workers:>8}{row['rate']:>10,.0f}{row['seconds']:>7.1f}{row['busy']:>11.0%}   {nodes}")
    (_, one), (_, two) = rows
    print(f"2 workers / 1 worker: {two['rate'] / one['rate']:.2f}x. Both nodes run on this machine's "
          f"{os.cpu_count()} cores (busy {one['busy']:.0%} with one worker); a worker node on its own cores adds "
          "its actors' share, until PostgreSQL (one CPU-bound backend per running batch) is the limit.")


# --- the run ------------------------------------------------------------------------------------------------


async def main(args) -> None:
    await reset_database()
    print(await machine.describe(BENCH_URL), flush=True)
    patient_node_start()
    cluster, node = start_cluster()
    redis = aioredis.from_url(REDIS_URL)
    try:
        settings = Settings(database_url=BENCH_URL, redis_url=REDIS_URL, secret_key="bench", sandbox=True,
                            ray_address=cluster.address, telegram_pacing_override=(0.0, 0.0),
                            telegram_warmup_start=1_000_000)
        remote.init_ray(settings)
        conn = await asyncpg.connect(BENCH_URL)
        figures = await measure_memory(conn, settings, args.leads)
        print_memory(figures)
        print_capacity(figures)
        rows = [(1, await throughput(conn, settings, args.campaigns, args.leads, args.latency_ms))]
        print(f"1 worker: {rows[0][1]['rate']:,.0f} leads/s", flush=True)
        add_worker(cluster, node)
        rows.append((2, await throughput(conn, settings, args.campaigns, args.leads, args.latency_ms)))
        await conn.close()
        print_throughput(rows, args.campaigns, args.leads, args.latency_ms)
    finally:
        remote.shutdown_ray()
        stop_cluster(cluster, node["temp_dir"])
        await redis.flushdb()
        await redis.aclose()
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute("DROP DATABASE IF EXISTS outreach_bench_scale_out WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=4, help="campaigns run at once (default 4)")
    parser.add_argument("--leads", type=int, default=10_000, help="email leads per campaign (default 10,000)")
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox provider latency (default 0)")
    parser.add_argument("--quick", action="store_true", help="2 campaigns of 1,000 leads: a smoke run")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.campaigns, arguments.leads = 2, 1_000
    asyncio.run(main(arguments))
