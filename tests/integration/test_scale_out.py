"""Scale-out on a Ray cluster of several nodes on this machine: a head that runs the API driver and two worker
nodes (ray.cluster_utils.Cluster, every node on 127.0.0.1). Campaign actors run on the workers; the worker that
holds a running campaign is killed (no graceful exit), and the campaign finishes on the other worker with every
lead attempted once and every lead terminal.

The cluster and the API live in a child process (`drive`, run as `python -m tests.integration.test_scale_out`),
so the session's local Ray (tests/conftest.py) is neither reused nor disturbed; this process prepares the
campaign over HTTP and reads the outcome from PostgreSQL.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import sys
import time
import uuid

import pytest
import yaml

from outreach.actors import remote
from tests.integration.test_execution import setup_campaign

ROOT = pathlib.Path(__file__).resolve().parents[2]
BASE = "/api/dashboard/campaigns"
LEADS = 400
LATENCY_MS = 100  # 10 sends in flight at 100 ms: ~4 s of sending, so the kill lands mid-run
SENT_BEFORE_KILL = 60
DRIVER_TIMEOUT = 230


def test_deployment_worker_nodes_advertise_the_resource_actors_ask_for():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker_command = " ".join(compose["services"]["ray-worker"]["command"])
    assert f'--resources={{"{remote.WORKER_RESOURCE}": 1000}}' in worker_command
    assert "resources" not in " ".join(compose["services"]["ray-head"]["command"])
    cluster = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    assert cluster["available_node_types"]["worker"]["resources"] == {remote.WORKER_RESOURCE: 1000}
    assert remote.WORKER_RESOURCE not in cluster["available_node_types"]["head"]["resources"]


@pytest.mark.timeout(DRIVER_TIMEOUT + 60)  # three Ray nodes start under load: up to a minute
async def test_a_campaign_finishes_on_the_other_worker_when_its_node_is_killed(api, pool, database_url, tmp_path):
    campaign_id = await setup_campaign(api, pool, LEADS, settings={"sandbox": {"latencyMs": LATENCY_MS}})
    facts = await run_driver(tmp_path, {"database_url": database_url, "redis_url": os.environ.get(
        "TEST_REDIS_URL", "redis://127.0.0.1:6379/15"), "token": api.token, "campaign_id": campaign_id})
    print("scale-out facts:", facts)

    workers = set(facts["workers"])
    assert facts["first_node"] in workers and facts["first_node"] != facts["head"]
    assert facts["pending_at_kill"] > 0, "the campaign had finished before its node was killed"
    assert facts["final_node"] in workers - {facts["first_node"]}, facts
    assert facts["restarts"] >= 1
    await assert_each_lead_attempted_once_and_terminal(pool, uuid.UUID(campaign_id))


async def assert_each_lead_attempted_once_and_terminal(pool, campaign_id: uuid.UUID) -> None:
    assert await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"
    states = dict(await pool.fetch("SELECT state::text, count(*) FROM campaign_leads WHERE campaign_id = $1 "
                                   "GROUP BY 1", campaign_id))
    assert sum(states.values()) == LEADS and not {"pending", "in_progress"} & set(states), states
    per_lead = await pool.fetch("SELECT lead_id, channel, count(*) AS attempts, count(outcome) AS outcomes "
                                "FROM attempts WHERE campaign_id = $1 GROUP BY 1, 2", campaign_id)
    assert len(per_lead) == LEADS and {(row["attempts"], row["outcomes"]) for row in per_lead} == {(1, 1)}
    messages = await pool.fetch("SELECT lead_id, provider_id FROM messages WHERE campaign_id = $1", campaign_id)
    assert len({row["lead_id"] for row in messages}) == len(messages) == LEADS, "a lead has two messages"
    assert len({row["provider_id"] for row in messages}) == LEADS, "a provider id was recorded twice"


async def run_driver(tmp_path, args: dict) -> dict:
    """`drive` in a child process of its own group, bounded; its facts from the last line it prints."""
    log_path = tmp_path / "driver.log"
    # Ray reads these when it is imported: given to the child before it starts, every node stays on loopback.
    env = {**{key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"},
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    with log_path.open("wb") as log:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.test_scale_out", json.dumps(args), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=log, start_new_session=True)
        try:
            stdout, _ = await asyncio.wait_for(child.communicate(), DRIVER_TIMEOUT)
        except TimeoutError:
            await stop_group(child)
            raise AssertionError(f"the cluster driver did not finish in {DRIVER_TIMEOUT} s:\n{tail(log_path)}")
    lines = stdout.decode().strip().splitlines()
    assert child.returncode == 0 and lines, f"driver exited {child.returncode}:\n{tail(log_path)}"
    return json.loads(lines[-1])


async def stop_group(child) -> None:
    """The driver, and the Ray nodes it started, by the process group we created for it."""
    os.killpg(child.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(child.wait(), 15)
    except TimeoutError:
        os.killpg(child.pid, signal.SIGKILL)
        await child.wait()


def tail(path: pathlib.Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- the child process: a head, two workers, the API as a driver on the head ----------------------------------


def patient_node_start(seconds: float = 120.0) -> None:
    """Ray gives a starting node 30 s (hard-coded in ray._private.node) to register with the GCS, and a node
    registers only once its Python agents have imported: on 2 cores shared with other test runs that took 30 s.
    In this child process only, the registration check retries up to `seconds` before it reports failure."""
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


async def drive(args: dict) -> dict:
    patient_node_start()
    cluster, workers, temp_dir = start_cluster(workers=2)
    try:
        return await run_and_kill(args, cluster, workers)
    finally:
        remote.shutdown_ray()
        stop_cluster(cluster, temp_dir)


def start_cluster(workers: int, attempts: int = 3):
    """A head (1 CPU, no worker resource) and `workers` worker nodes: (cluster, worker nodes, temp dir). On 2 busy
    cores a raylet sometimes gives up waiting for its agents to start (a fatal check in Ray): then everything
    that attempt started is stopped and the cluster is started again."""
    from ray.cluster_utils import Cluster

    for attempt in range(attempts):
        temp_dir = f"/tmp/ray-scale-out-{os.getpid()}-{attempt}"
        node = {"node_ip_address": "127.0.0.1", "temp_dir": temp_dir, "include_dashboard": False}
        cluster = None
        try:
            cluster = Cluster(initialize_head=True, head_node_args={**node, "num_cpus": 1})
            nodes = [cluster.add_node(**node, num_cpus=2, resources={remote.WORKER_RESOURCE: 1000})
                     for _ in range(workers)]
            return cluster, nodes, temp_dir
        except Exception as exc:
            print(f"cluster start {attempt + 1} failed: {exc}", file=sys.stderr, flush=True)
            stop_cluster(cluster, temp_dir)
            if attempt == attempts - 1:
                raise


def stop_cluster(cluster, temp_dir: str) -> None:
    """Shut the cluster down, then kill by PID whatever this run's nodes left (each names our temp dir)."""
    import shutil

    if cluster is not None:
        cluster.shutdown()
    for pid in started_under(temp_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(temp_dir, ignore_errors=True)


def started_under(temp_dir: str) -> list[int]:
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if temp_dir.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


async def run_and_kill(args: dict, cluster, workers: list) -> dict:
    from aiohttp.test_utils import TestClient, TestServer

    from outreach import service
    from outreach.actors.campaign_runner import RunnerOptions
    from outreach.http.app import Deps, build_app
    from outreach.runtime.config import Settings
    from outreach.storage import db
    from outreach.storage.redis_store import redis_ctx

    settings = Settings(database_url=args["database_url"], redis_url=args["redis_url"], secret_key="test-secret",
                        sandbox=True, ray_address=cluster.address)
    remote.init_ray(settings)
    options = RunnerOptions(batch_size=20, max_in_flight=40, concurrency={"email": 10, "telegram": 4, "voice": 4})
    runtime = remote.RayRuntime(settings, options)
    campaign_id = uuid.UUID(args["campaign_id"])
    async with db.pool_ctx(settings.database_url, min_size=1, max_size=4) as pool, \
            redis_ctx(settings.redis_url) as redis:
        client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, runtime=runtime)),
                                       host="127.0.0.1"))
        await client.start_server()
        stop = asyncio.Event()  # the lease sweeper every API process runs
        sweeper = asyncio.create_task(service.sweep_leases(pool, runtime, settings, until=stop))
        try:
            started = await client.post(f"{BASE}/{campaign_id}/start",
                                        headers={"Authorization": f"Bearer {args['token']}"})
            assert started.status == 200, await started.text()
            await until(lambda: attempted(pool, campaign_id, SENT_BEFORE_KILL), 60, "leads attempted")
            first = await asyncio.to_thread(campaign_actor_node, campaign_id)
            victim = next(worker for worker in workers if worker.node_id == first["node"])
            pending_at_kill = await left(pool, campaign_id)
            cluster.remove_node(victim, allow_graceful=False)
            killed_at = time.monotonic()
            await until(lambda: completed(pool, campaign_id), 120, "campaign completed")
            recovered_in = time.monotonic() - killed_at
            final = await asyncio.to_thread(campaign_actor_node, campaign_id)
        finally:
            stop.set()
            await sweeper
            await client.close()
    return {"head": cluster.head_node.node_id, "workers": [worker.node_id for worker in workers],
            "first_node": first["node"], "final_node": final["node"], "restarts": final["restarts"],
            "pending_at_kill": pending_at_kill, "kill_to_completed_s": round(recovered_in, 1)}


def campaign_actor_node(campaign_id) -> dict:
    """Where the campaign's actor lives now, and how often Ray restarted it (from the GCS)."""
    import ray

    for actor in ray._private.state.actors().values():
        if actor["Name"] == f"campaign:{campaign_id}" and actor["State"] == "ALIVE":
            return {"node": actor["Address"]["NodeID"], "restarts": int(actor.get("NumRestarts", 0))}
    raise AssertionError(f"no live actor for campaign {campaign_id}")


async def until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        await asyncio.sleep(0.05)


async def attempted(pool, campaign_id, count: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM attempts WHERE campaign_id = $1 AND outcome IS NOT NULL",
                               campaign_id) >= count


async def left(pool, campaign_id) -> int:
    return await pool.fetchval("SELECT count(*) FROM campaign_leads WHERE campaign_id = $1 AND state IN "
                               "('pending', 'in_progress')", campaign_id)


async def completed(pool, campaign_id) -> bool:
    return await pool.fetchval("SELECT status::text FROM campaigns WHERE id = $1", campaign_id) == "completed"


if __name__ == "__main__":
    print(json.dumps(asyncio.run(drive(json.loads(sys.argv[1])))), flush=True)
