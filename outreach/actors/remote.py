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
import functools
import logging
import os
import resource

import ray

from outreach.actors.campaign_runner import CampaignRunner, RunnerOptions
from outreach.actors.dispatchers import EmailDispatcher, call_request
from outreach.actors.telegram_account import ACCOUNT_UNAVAILABLE, TelegramAccount
from outreach.actors.voice_line import AgentCaller, VoiceLine
from outreach.runtime import crypto, errors
from outreach.runtime.config import Settings
from outreach.runtime.ports import SendJob, SendResult
from outreach.runtime.providers import openrouter, resend, sandbox, telegram, twilio, voice_agent
from outreach.storage import db, email_senders, numbers, rate_limits, telegram_accounts
from outreach.storage.calls import CallLogStore
from outreach.storage.redis_store import open_redis
from outreach.storage.run_store import PgAccountStore, PgRunStore, RedisEventSink

log = logging.getLogger(__name__)
NAMESPACE = "outreach"
ACTOR_CPU = 0.01  # fractional, so hundreds of entity actors fit on a small machine
CAMPAIGN_IDLE_SECONDS = 120
ENTITY_IDLE_SECONDS = 600
CALL_END_GRACE_SECONDS = 120  # status callbacks can trail the end of a call


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
            self._pool = await db.create_pool(self.settings.database_url, min_size=1, max_size=4)
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
        self.campaign_id = campaign_id
        self.options = options
        self.runner: CampaignRunner | None = None
        self._drafter = None

    async def run(self) -> dict:
        with self.busy():
            async with self._setup:  # a second caller attaches to the run the first one started
                if self.runner is None or not self.runner.is_running():
                    self.runner = await self._build_runner()
                run = self.runner.start()
            return plain(await asyncio.shield(run))

    async def pause(self) -> bool:
        if self.runner is None:
            return False
        await self.runner.pause()
        return True

    async def _build_runner(self) -> CampaignRunner:
        pool = await self.pool()
        store = PgRunStore(pool, self.campaign_id, self.settings.plan_limits)
        campaign = await store.load_campaign()
        dispatchers = await build_dispatchers(self.settings, pool, campaign, self.redis())
        return CampaignRunner(self.campaign_id, store, RedisEventSink(self.redis(), self.campaign_id), dispatchers,
                              self.options, drafter=self.drafter())

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

    async def send(self, campaign_id: str, username: str, text: str) -> SendResult:
        with self.busy():
            async with self._setup:
                if self.account is None:
                    pool = await self.pool()
                    try:
                        sender = await telegram_sender(self.settings, pool, self.account_id)
                    except SenderUnavailable as exc:
                        return exc.result  # nothing sent or counted; the next send looks again
                    self.account = TelegramAccount(self.account_id, PgAccountStore(pool), sender,
                                                   self.settings.telegram_pacing)
            return await self.account.send(campaign_id, username, text)

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
                    caller = voice_caller(self.settings, self.number_id, pool, self.redis())
                    self.line = VoiceLine(self.number_id, PgAccountStore(pool), caller, self.max_concurrent_calls)
            return await self.line.call(call)


def actor_options(name: str, concurrency: int, retry_calls: bool = True) -> dict:
    """`retry_calls`: a call in flight when the actor dies is run again on its new process. Only for
    methods that are safe to repeat (a campaign run resumes; a voice call finds its call log)."""
    return {"name": name, "namespace": NAMESPACE, "get_if_exists": True, "lifetime": "detached",
            "max_restarts": -1, "max_task_retries": -1 if retry_calls else 0, "max_concurrency": concurrency,
            "num_cpus": ACTOR_CPU}


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


def existing_campaign_actor(campaign_id):
    try:
        return ray.get_actor(f"campaign:{campaign_id}", namespace=NAMESPACE)
    except ValueError:
        return None


# --- dispatchers a campaign run uses ----------------------------------------------------------------


class AccountTelegramDispatcher:
    """Picks the org's active account with the fewest sends today; tries the next when one cannot send."""

    def __init__(self, settings: Settings, pool, org_id):
        self.settings = settings
        self.pool = pool
        self.org_id = org_id

    async def dispatch(self, job: SendJob) -> SendResult:
        async with db.connection(self.pool) as conn:
            account_ids = await telegram_accounts.accounts_by_load(conn, self.org_id)
        reasons = []
        for account_id in account_ids:
            handle = await asyncio.to_thread(telegram_actor, account_id, self.settings)  # a GCS lookup: off the loop
            try:
                result = await handle.send.remote(job.campaign_id, job.lead["telegram_username"], job.text or "")
            except ray.exceptions.RayActorError as exc:  # died mid-call: the message may have gone out
                return SendResult("unknown", error=f"Telegram account actor died during the send: {exc}")
            if result.outcome != ACCOUNT_UNAVAILABLE:
                return result
            reasons.append(result.error)
        reason = "Campaign is not active" if "Campaign is not active" in reasons else (
            "No Telegram account with capacity today")
        return SendResult("not_sent", error=reason, channel_blocked=True)


class LineVoiceDispatcher:
    """Calls from the campaign's numbers (else any of the org's active numbers), each a VoiceLine actor."""

    def __init__(self, settings: Settings, pool, campaign: dict):
        self.settings = settings
        self.pool = pool
        self.campaign = campaign
        self._next = 0

    async def dispatch(self, job: SendJob) -> SendResult:
        async with db.connection(self.pool) as conn:
            lines = await numbers.lines_for_campaign(conn, self.campaign["org_id"], self.campaign["id"])
        if not lines:
            return SendResult("not_sent", error="No active phone number to call from", channel_blocked=True)
        line = lines[self._next % len(lines)]
        self._next += 1
        handle = await asyncio.to_thread(voice_actor, line["id"], self.settings, line["max_concurrent_calls"])
        return await handle.call.remote(call_request(job, line["number"], self.campaign))


async def build_dispatchers(settings: Settings, pool, campaign: dict, redis=None) -> dict:
    dispatchers = {"telegram": AccountTelegramDispatcher(settings, pool, campaign["org_id"]),
                   "voice": LineVoiceDispatcher(settings, pool, campaign)}
    if settings.sandbox:
        outcomes = sandbox_outcomes(settings, "email", campaign)
        sender = settings.email_from or "Outreach Sandbox <sandbox@outreach.invalid>"
        dispatchers["email"] = EmailDispatcher(sandbox.SandboxEmail(outcomes), sender)
    else:
        dispatchers["email"] = await email_dispatcher(settings, pool, campaign["org_id"], redis)
    return dispatchers


async def email_dispatcher(settings: Settings, pool, org_id, redis=None) -> EmailDispatcher:
    """Resend, from the org's saved sender, else OUTREACH_EMAIL_FROM; without a key or a sender every send
    is refused with the setting to fix (the leads stay pending for email)."""
    if not settings.resend_configured:
        return EmailDispatcher(UnconfiguredEmail("Email is not configured: set RESEND_API_KEY"), "")
    async with db.connection(pool) as conn:
        sender = await email_senders.email_sender(conn, org_id)
    if sender is None and not settings.email_from:
        reason = "No email sender: save the organization's email settings, or set OUTREACH_EMAIL_FROM"
        return EmailDispatcher(UnconfiguredEmail(reason), "")
    from_address, reply_to = (sender["from"], sender["reply_to"]) if sender else (settings.email_from, None)
    client = resend_client(settings.resend_api_key, settings.resend_api_url, settings.resend_rate_per_second, redis)
    return EmailDispatcher(client, from_address, reply_to)


@functools.cache
def resend_client(api_key: str, base_url: str, rate_per_second: int, redis=None) -> resend.ResendEmail:
    """One per process and key: every run in this actor shares its session; with Redis, the account's rate
    limit is shared by every process that sends through it."""
    return resend.ResendEmail(api_key, base_url, rate_per_second=rate_per_second,
                              limiter=shared_limiter(redis, "resend", api_key, rate_per_second))


def shared_limiter(redis, provider: str, api_key: str, per_second: int):
    if redis is None:
        return None
    return rate_limits.SharedRateLimiter(redis, rate_limits.key_for(provider, api_key), per_second,
                                         fallback=resend.RateLimiter(per_second))


class UnconfiguredEmail:
    def __init__(self, reason: str):
        self.reason = reason

    async def send_email(self, email, idempotency_key: str, still_wanted=None) -> SendResult:
        return SendResult("not_sent", error=self.reason, channel_blocked=True)


def sandbox_outcomes(settings: Settings, channel: str, campaign: dict | None = None) -> sandbox.SandboxOutcomes:
    """Latency and outcome mix: the deployment's defaults, or the campaign's `settings.sandbox`."""
    overrides = (campaign or {}).get("settings", {}).get("sandbox") or {}
    latency_ms = overrides.get("latencyMs", settings.sandbox_latency_ms)
    mix = (overrides.get("outcomes") or {}).get(channel)
    return sandbox.SandboxOutcomes(channel, seed=settings.sandbox_seed, latency=latency_ms / 1000, mix=mix)


class SenderUnavailable(Exception):
    """The account cannot send at all; `result` says why."""

    def __init__(self, result: SendResult):
        super().__init__(result.error)
        self.result = result


async def telegram_sender(settings: Settings, pool, account_id):
    """Simulated in sandbox; else Telethon over the account's session, decrypted here, inside its actor."""
    if settings.sandbox:
        return sandbox.SandboxTelegram(sandbox_outcomes(settings, "telegram"))
    if not (settings.telegram_api_id and settings.telegram_api_hash):
        raise SenderUnavailable(SendResult("not_sent", channel_blocked=True, error=(
            "Telegram provider is not configured: set TELEGRAM_API_ID and TELEGRAM_API_HASH")))
    async with db.connection(pool) as conn:
        session = await telegram_accounts.load_session(conn, account_id)
    if session is None:  # another account of the org may still send
        raise SenderUnavailable(SendResult(ACCOUNT_UNAVAILABLE, channel_blocked=True, error=(
            "Telegram account has no session: log it in with `outreach telegram add`")))
    try:
        plain = crypto.decrypt(settings.secret_key, session, label="Telegram session")
    except errors.ConfigError as exc:  # the server's key, not the account: every account is affected
        log.error("telegram account %s: %s", account_id, exc)
        raise SenderUnavailable(SendResult("not_sent", error=str(exc), channel_blocked=True)) from exc
    client = telegram.build_client(plain, settings.telegram_api_id, settings.telegram_api_hash)
    return telegram.TelethonSender(client, peers=telegram_accounts.PgPeers(pool, account_id))


def voice_caller(settings: Settings, number_id=None, pool=None, redis=None):
    """Simulated in sandbox; else Twilio with the voice agent attached, the line waiting for each call's end."""
    if settings.sandbox:
        return sandbox.SandboxVoice(sandbox_outcomes(settings, "voice"))
    phone, agent = build_twilio(settings), build_voice_agent(settings)
    if phone is None:
        return NotConfiguredSender("Voice (Twilio)", "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    if agent is None:
        return NotConfiguredSender("Voice agent", "VOICE_AGENT_URL and VOICE_AGENT_SECRET")
    wait_seconds = twilio.RING_SECONDS + settings.voice_max_call_seconds + CALL_END_GRACE_SECONDS
    return AgentCaller(number_id, CallLogStore(pool, redis), phone, agent, settings.public_url, wait_seconds,
                       settings.voice_max_call_seconds)


def build_twilio(settings: Settings) -> twilio.Twilio | None:
    """The platform's Twilio account, or None when TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are unset."""
    if not settings.twilio_configured:
        return None
    return twilio.Twilio(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_base_url)


def build_voice_agent(settings: Settings) -> voice_agent.VoiceAgent | None:
    """The voice agent, or None unless both VOICE_AGENT_URL and VOICE_AGENT_SECRET are set (it takes signed
    requests only)."""
    if not (settings.voice_agent_url and settings.voice_agent_secret):
        return None
    return voice_agent.VoiceAgent(settings.voice_agent_url, settings.voice_agent_secret)


class NotConfiguredSender:
    """A channel without a provider: every send fails with a reason naming what is missing."""

    def __init__(self, name: str, missing: str | None = None):
        self.name = name
        self.missing = missing  # the settings to set, named in the reason

    def _result(self) -> SendResult:
        hint = f": set {self.missing}" if self.missing else ""
        return SendResult("not_sent", error=f"{self.name} provider is not configured{hint}", channel_blocked=True)

    async def send_message(self, username: str, text: str) -> SendResult:
        return self._result()

    async def place_call(self, call) -> SendResult:
        return self._result()


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

    @staticmethod
    def actor_counts() -> dict[str, int]:
        """Named actors alive, by kind (campaign, telegram, voice); a blocking call to Ray's GCS."""
        counts = {"campaign": 0, "telegram": 0, "voice": 0}
        for actor in ray.util.list_named_actors(all_namespaces=True):
            kind = actor["name"].split(":", 1)[0]
            if actor.get("namespace") == NAMESPACE and kind in counts:
                counts[kind] += 1
        return counts
