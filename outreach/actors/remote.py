"""The only module that puts actors on Ray: naming, options, and each actor's dependencies.

Actors are named `campaign:<id>`, `telegram:<account id>` and `voice:<number id>` in the `outreach`
namespace, created on first use (`get_if_exists`), detached so any API replica finds them, restarted
by Ray when their process dies (a `run` in flight is run again and resumes from PostgreSQL), and
gone on their own after an idle period.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import resource
import time

import ray

from outreach.actors import senders
from outreach.actors.campaign_runner import CampaignRunner, RunnerOptions
from outreach.actors.telegram_account import TelegramAccount
from outreach.actors.telegram_inbox import TelegramInbox
from outreach.actors.voice_line import VoiceLine
from outreach.providers import openrouter
from outreach.runtime.config import Settings
from outreach.runtime.ports import CallRequest, SendResult
from outreach.storage import db, leases, telegram_accounts
from outreach.storage import clock
from outreach.storage import replies
from outreach.storage.redis_store import open_redis
from outreach.storage.run_store import PgAccountStore, PgRunStore, Reconnecting, RedisEventSink

log = logging.getLogger(__name__)
NAMESPACE = "outreach"
ACTOR_CPU = 0.01  # fractional, so hundreds of entity actors fit on a small machine
CAMPAIGN_IDLE_SECONDS = 120
ENTITY_IDLE_SECONDS = 600
# Worker nodes advertise this resource (docker-compose.yml, ray_cluster.yaml: 1000 of it); while the cluster has
# any, actors ask for a sliver of it, so they run there and not on the head beside the API. A marker, not a quota:
# CPU and memory decide how many actors a node holds.
WORKER_RESOURCE = "outreach_worker"
WORKER_SHARE = 0.001
PLACEMENT_RECHECK_SECONDS = 30.0
_placement = {"checked_at": None, "workers": False}
# A run makes a few short-lived objects per lead (tasks, futures, dicts); with the default thresholds the collector
# ran a young-generation pass every 700 of them, a quarter of the campaign actor's CPU (bench/execute.py). Its own
# process, so: what exists at start is frozen out of collection, and the young generation collected less often.
CAMPAIGN_GC_THRESHOLDS = (50_000, 20, 100)


def init_ray(settings: Settings, temp_dir: str | None = None) -> None:
    """Join RAY_ADDRESS, or start a local Ray on loopback with no dashboard."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace=NAMESPACE, log_to_driver=False)
        return
    ray.init(address="local", num_cpus=settings.ray_num_cpus, include_dashboard=False, namespace=NAMESPACE,
             _node_ip_address="127.0.0.1", _temp_dir=temp_dir, log_to_driver=False)


def shutdown_ray() -> None:
    """Leave Ray: a local Ray started by init_ray stops with its actors; a cluster joined goes on."""
    if ray.is_initialized():
        ray.shutdown()


class ActorBase:
    """Per-process resources (a small pool, Redis) and the idle exit shared by all actors."""

    idle_seconds = ENTITY_IDLE_SECONDS

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pool = None
        self._redis = None
        self._idle: asyncio.TimerHandle | None = None
        self._calls = 0
        self._setup = asyncio.Lock()  # concurrent first calls must build one pool and one worker

    async def pool(self):
        if self._pool is None:
            self._pool = await db.create_pool(self.settings.database_url, min_size=1, max_size=4,
                                              planner=db.KEYED_BATCHES)
        return self._pool

    def redis(self):
        if self._redis is None:
            self._redis = open_redis(self.settings.redis_url)
        return self._redis

    @contextlib.contextmanager
    def busy(self):
        """While any call is in progress the actor stays; once idle for `idle_seconds` it exits."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._calls += 1
        try:
            yield
        finally:
            self._calls -= 1
            if self._calls == 0:
                self._idle = asyncio.get_running_loop().call_later(self.idle_seconds, self._exit)

    def _exit(self) -> None:
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    async def ping(self) -> int:
        return os.getpid()


class CampaignActor(ActorBase):
    idle_seconds = CAMPAIGN_IDLE_SECONDS

    def __init__(self, campaign_id: str, settings: Settings, options: RunnerOptions | None = None):
        super().__init__(settings)
        gc.freeze()
        gc.set_threshold(*CAMPAIGN_GC_THRESHOLDS)
        self.campaign_id = campaign_id
        self.options = options
        self.runner: CampaignRunner | None = None
        self._drafter = None
        self._run: asyncio.Task | None = None
        self._heartbeat: asyncio.Task | None = None

    async def run(self) -> dict:
        with self.busy():
            async with self._setup:  # a second caller attaches to the run the first one started
                if self.runner is None or not self.runner.is_running():
                    self.runner = await self._build_runner()
                self._run = run = self.runner.start()
                await self._hold_lease()
            return plain(await asyncio.shield(run))

    async def _hold_lease(self) -> None:
        """While the run lives its lease is renewed in PostgreSQL; if this process dies, the lease expires and
        an API process resumes the campaign (storage.leases)."""
        if self._heartbeat is None or self._heartbeat.done():
            heartbeat = leases.Heartbeat(await self.pool(), self.campaign_id, self.settings.campaign_lease_seconds)
            self._heartbeat = asyncio.create_task(heartbeat.keep(lambda: self._run))

    async def pause(self) -> bool:
        if self.runner is None:
            return False
        await self.runner.pause()
        return True

    async def _build_runner(self) -> CampaignRunner:
        pool = await self.pool()
        store = Reconnecting(PgRunStore(pool, self.campaign_id, self.settings.plan_limits), f"campaign {self.campaign_id}")
        campaign = await store.load_campaign()
        dispatchers = await senders.build_dispatchers(self.settings, pool, campaign, RayEntities(self.settings),
                                                      self.redis(), database=store)
        return CampaignRunner(self.campaign_id, store, RedisEventSink(self.redis(), self.campaign_id), dispatchers,
                              self.options, drafter=self.drafter(),
                              clock=clock.clock_for(self.settings.shared_test_clock, self.redis()))

    def drafter(self):
        if self._drafter is None and self.settings.openrouter_api_key:
            self._drafter = openrouter.OpenRouterDrafter(self.settings.openrouter_api_key,
                                                         self.settings.openrouter_base_url)
        return self._drafter


class TelegramAccountActor(ActorBase):
    """The only owner of the account's Telegram session: no other process opens it."""

    def __init__(self, account_id: str, settings: Settings):
        super().__init__(settings)
        self.account_id = account_id
        self.account: TelegramAccount | None = None
        self._closing: asyncio.Task | None = None
        self._listening: asyncio.Task | None = None
        self._started = asyncio.Event()

    async def send(self, campaign_id: str, username: str, text: str) -> SendResult:
        with self.busy():
            refusal = await self._ensure_account()
            if refusal is not None:
                return refusal
            return await self.account.send(campaign_id, username, text)

    async def listen(self) -> bool:
        """Read the account's replies while it is active (actors.telegram_inbox), on the client that sends.
        Returns once it listens and has caught up (True), or could not start (False); a second call finds the
        first one listening."""
        if self._listening is None or self._listening.done():
            if await self._ensure_account() is not None or not hasattr(self.account.sender, "listen"):
                return False  # no usable session, or a sandbox account: nothing to read
            inbox = TelegramInbox(self.account_id, replies.PgInbox(await self.pool(), self.account_id),
                                  self.account.sender)
            self._started = asyncio.Event()
            self._listening = asyncio.create_task(self._listen(inbox, self._started))
        started = asyncio.create_task(self._started.wait())
        await asyncio.wait({started, self._listening}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        return self._started.is_set()

    async def _listen(self, inbox: TelegramInbox, started: asyncio.Event) -> None:
        with self.busy():  # a listening account's actor does not exit when idle
            try:
                await inbox.run(started)
            except Exception:  # the next pass of telegram_inbox.keep_listening starts it again
                log.exception("telegram account %s: stopped listening", self.account_id)

    async def _ensure_account(self) -> SendResult | None:
        """The account with its sender, built once; the refusal when it cannot send at all."""
        async with self._setup:
            if self.account is None:
                pool = await self.pool()
                try:
                    sender = await senders.telegram_sender(self.settings, pool, self.account_id)
                except senders.SenderUnavailable as exc:
                    return exc.result  # nothing sent or counted; the next send looks again
                self.account = TelegramAccount(
                    self.account_id, telegram_accounts.PgAccountState(pool), sender, self.settings.telegram_pacing,
                    warmup=self.settings.telegram_warmup, spread=self.settings.telegram_spread,
                    clock=clock.clock_for(self.settings.shared_test_clock, self.redis()))
        return None

    def _exit(self) -> None:
        self._closing = asyncio.get_running_loop().create_task(self._close_and_exit())

    async def _close_and_exit(self) -> None:
        """Disconnect from Telegram before the process goes, so the session is not left open."""
        close = getattr(self.account.sender, "close", None) if self.account is not None else None
        if close is not None:
            await close()
        if self._calls == 0:  # a send that arrived meanwhile keeps the actor; its client connects again
            super()._exit()


class VoiceLineActor(ActorBase):
    def __init__(self, number_id: str, settings: Settings, max_concurrent_calls: int = 1):
        super().__init__(settings)
        self.number_id = number_id
        self.max_concurrent_calls = max_concurrent_calls
        self.line: VoiceLine | None = None

    async def call(self, call) -> SendResult:
        with self.busy():
            async with self._setup:
                if self.line is None:
                    pool = await self.pool()
                    caller = senders.voice_caller(self.settings, self.number_id, pool, self.redis())
                    self.line = VoiceLine(self.number_id, PgAccountStore(pool), caller, self.max_concurrent_calls)
            return await self.line.call(call)


def actor_options(name: str, concurrency: int, retry_calls: bool = True) -> dict:
    """`retry_calls`: a call in flight when the actor dies is run again on its new process. Only for
    methods that are safe to repeat (a campaign run resumes; a voice call finds its call log)."""
    return {"name": name, "namespace": NAMESPACE, "get_if_exists": True, "lifetime": "detached",
            "max_restarts": -1, "max_task_retries": -1 if retry_calls else 0, "max_concurrency": concurrency,
            "num_cpus": ACTOR_CPU, **placement()}


def placement() -> dict:
    """On worker nodes when the cluster has any, spread over them (Ray's default packs small actors onto one node
    until it is half used); a restart after a worker's death lands on another worker. On a single local node
    (laptop, tests, CI): Ray's defaults. Ray's GCS is asked at most every 30 s."""
    now = time.monotonic()
    checked_at = _placement["checked_at"]
    if checked_at is None or now - checked_at > PLACEMENT_RECHECK_SECONDS:
        _placement["workers"] = ray.cluster_resources().get(WORKER_RESOURCE, 0) > 0
        _placement["checked_at"] = now
    if not _placement["workers"]:
        return {}
    return {"resources": {WORKER_RESOURCE: WORKER_SHARE}, "scheduling_strategy": "SPREAD"}


CampaignRemote = ray.remote(CampaignActor)
TelegramRemote = ray.remote(TelegramAccountActor)
VoiceRemote = ray.remote(VoiceLineActor)


def campaign_actor(campaign_id, settings: Settings, options: RunnerOptions | None = None):
    return CampaignRemote.options(**actor_options(f"campaign:{campaign_id}", 64)).remote(
        str(campaign_id), settings, options)


def telegram_actor(account_id, settings: Settings):
    # A Telegram send cannot be made idempotent at Telegram: never run it twice after a crash.
    return TelegramRemote.options(**actor_options(f"telegram:{account_id}", 64, retry_calls=False)).remote(
        str(account_id), settings)


def voice_actor(number_id, settings: Settings, max_concurrent_calls: int = 1):
    return VoiceRemote.options(**actor_options(f"voice:{number_id}", 64)).remote(
        str(number_id), settings, max_concurrent_calls)


@dataclasses.dataclass
class RayEntities:
    """How a campaign's dispatchers reach the account and line actors (routing.EntityActors on Ray)."""

    settings: Settings

    async def send_telegram(self, account_id, campaign_id: str, username: str, text: str) -> SendResult:
        handle = await asyncio.to_thread(telegram_actor, account_id, self.settings)  # a GCS lookup: off the loop
        try:
            return await handle.send.remote(campaign_id, username, text)
        except ray.exceptions.RayActorError as exc:  # died mid-call: the message may have gone out
            return SendResult("unknown", error=f"Telegram account actor died during the send: {exc}")

    async def call(self, line: dict, request: CallRequest) -> SendResult:
        handle = await asyncio.to_thread(voice_actor, line["id"], self.settings, line["max_concurrent_calls"])
        return await handle.call.remote(request)


@dataclasses.dataclass
class DemoTelegram:
    """The landing page's demo message, sent by one account (OUTREACH_DEMO_TELEGRAM_ACCOUNT) through its actor:
    its daily limit and pacing apply, as to any campaign send."""

    settings: Settings
    account_id: str

    async def send_message(self, username: str, text: str) -> SendResult:
        handle = await asyncio.to_thread(telegram_actor, self.account_id, self.settings)
        try:
            return await handle.send.remote(None, username, text)
        except ray.exceptions.RayActorError as exc:
            return SendResult("unknown", error=f"Telegram account actor died during the send: {exc}")


def existing_campaign_actor(campaign_id):
    try:
        return ray.get_actor(f"campaign:{campaign_id}", namespace=NAMESPACE)
    except ValueError:
        return None


def plain(summary: dict) -> dict:
    """A run summary with only builtin types, to cross process boundaries cheaply; with the actor's peak memory."""
    return {**summary, "counts": dict(summary["counts"]),
            "results": [dict(result) for result in summary.get("results", [])],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


@dataclasses.dataclass
class RayRuntime:
    """What the HTTP layer commands: run, pause and resume campaigns on Ray."""

    settings: Settings
    options: RunnerOptions | None = None

    def run(self, campaign_id):
        return campaign_actor(campaign_id, self.settings, self.options).run.remote()

    async def submit(self, campaign_id):
        """`run` without blocking the event loop on the actor lookup; returns the run's ObjectRef."""
        return await asyncio.to_thread(self.run, campaign_id)

    async def pause(self, campaign_id) -> None:
        handle = await asyncio.to_thread(existing_campaign_actor, campaign_id)
        if handle is not None:
            await handle.pause.remote()

    def resume(self, campaign_ids) -> list:
        return [self.run(campaign_id) for campaign_id in campaign_ids]

    async def listen_telegram(self, account_ids) -> list:
        """Every given account's actor reads its replies (created if need be; one already listening goes on)."""
        handles = await asyncio.to_thread(lambda: [telegram_actor(account_id, self.settings) for account_id in account_ids])
        return await asyncio.gather(*(handle.listen.remote() for handle in handles), return_exceptions=True)

    @staticmethod
    def actor_counts() -> dict[str, int]:
        """Named actors alive, by kind (campaign, telegram, voice); a blocking call to Ray's GCS."""
        counts = {"campaign": 0, "telegram": 0, "voice": 0}
        for actor in ray.util.list_named_actors(all_namespaces=True):
            kind = actor["name"].split(":", 1)[0]
            if actor.get("namespace") == NAMESPACE and kind in counts:
                counts[kind] += 1
        return counts
