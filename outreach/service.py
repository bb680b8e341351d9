"""The one place that wires it all: settings, the database, Redis and the HTTP app."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import io
import pathlib
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from outreach import terminal
from outreach.actors import remote, scheduler, senders, telegram_inbox
from outreach.actors.number_release import NumberReleaser
from outreach.http.app import Deps, build_app
from outreach.runtime import crypto, errors, lead_csv
from outreach.runtime.config import Settings
from outreach.providers import clerk, liqpay, openrouter, resend, resend_domains, sandbox, telegram
from outreach.providers import stripe as stripe_provider
from outreach.storage import api_keys, db, leads, leases, migrate, orgs, runs, telegram_accounts
from outreach.storage import clock, timers
from outreach.storage import lead_import, number_release, replies, usage
from outreach.storage.redis_store import redis_ctx

log = logging.getLogger(__name__)
LEAD_IMPORT_CHUNK = 5_000  # rows read and COPYed at a time by `outreach leads import`


def load_settings(env=None) -> Settings:
    return complete_settings(Settings.from_env(env))


def complete_settings(settings: Settings) -> Settings:
    """Fill what has a local default that needs the disk: a generated secret key outside production."""
    if not settings.secret_key:
        settings = dataclasses.replace(settings, secret_key=local_secret_key(settings.home))
    return settings


def local_secret_key(home: str) -> str:
    """Outside production a missing OUTREACH_SECRET_KEY is generated once and kept in OUTREACH_HOME."""
    folder = pathlib.Path(home)
    path = folder / "secret.key"
    if path.exists():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    log.warning("OUTREACH_SECRET_KEY is not set: generated one in %s (set it in production)", path)
    return key


def stop_runtime() -> None:
    """At the end of a command that ran campaigns here: leave Ray (a local one stops)."""
    remote.shutdown_ray()


async def prepare_database(settings: Settings) -> list[str]:
    await db.ensure_database(settings.database_url)
    return await migrate.migrate(settings.database_url)


@contextlib.asynccontextmanager
async def deps_ctx(settings: Settings, with_runtime: bool = False) -> AsyncIterator[Deps]:
    runtime = None
    if with_runtime:
        await asyncio.to_thread(remote.init_ray, settings)
        runtime = remote.RayRuntime(settings)
    async with db.pool_ctx(settings.database_url) as pool, redis_ctx(settings.redis_url) as redis, \
            stripe_ctx(settings) as stripe_port, email_ports_ctx(settings, redis) as email_ports:
        yield Deps(pool=pool, redis=redis, runtime=runtime, stripe=stripe_port, liqpay=build_liqpay(settings),
                   twilio=senders.build_twilio(settings), voice_agent=senders.build_voice_agent(settings),
                   clerk_users=build_clerk_users(settings), demo_telegram=build_demo_telegram(settings, runtime),
                   **email_ports)


@contextlib.asynccontextmanager
async def email_ports_ctx(settings: Settings, redis=None) -> AsyncIterator[dict]:
    """The email sender (the sandbox, or Resend when RESEND_API_KEY is set) and the OpenRouter drafter,
    each None when not configured; their HTTP sessions closed at the end."""
    email = None
    if settings.sandbox:
        email = sandbox.SandboxEmail(senders.sandbox_outcomes(settings, "email"))
    elif settings.resend_configured:
        email = resend.ResendEmail(settings.resend_api_key, settings.resend_api_url,
                                   rate_per_second=settings.resend_rate_per_second,
                                   limiter=senders.shared_limiter(redis, "resend", settings.resend_api_key,
                                                                 settings.resend_rate_per_second))
    drafter = (openrouter.OpenRouterDrafter(settings.openrouter_api_key, settings.openrouter_base_url)
               if settings.openrouter_api_key else None)
    # A sender address at a domain verified at Resend is proven (http/sender_proof.py).
    domains = (resend_domains.ResendDomains(settings.resend_api_key, settings.resend_api_url)
               if settings.resend_configured and not settings.sandbox else None)
    try:
        yield {"email": email, "drafter": drafter, "sender_domains": domains}
    finally:
        for port in (email, drafter, domains):
            if hasattr(port, "close"):
                await port.close()


@contextlib.asynccontextmanager
async def stripe_ctx(settings: Settings) -> AsyncIterator[stripe_provider.StripeBilling | None]:
    """The Stripe port when STRIPE_SECRET_KEY is set (None otherwise); its HTTP session closed at the end."""
    if not settings.stripe_configured:
        yield None
        return
    port = stripe_provider.StripeBilling(settings.stripe_secret_key, settings.stripe_webhook_secret,
                                         settings.stripe_base_url)
    try:
        yield port
    finally:
        await port.close()


def build_demo_telegram(settings: Settings, runtime):
    """Who sends the landing page's demo message: the configured account's actor (where campaigns run), else the
    sandbox when sandboxed; None otherwise (a 503 naming OUTREACH_DEMO_TELEGRAM_ACCOUNT)."""
    if settings.demo_telegram_account and runtime is not None:
        return remote.DemoTelegram(settings, settings.demo_telegram_account)
    if settings.sandbox:
        return sandbox.SandboxTelegram(senders.sandbox_outcomes(settings, "telegram"))
    return None


def build_clerk_users(settings: Settings) -> clerk.ClerkUsers | None:
    if not settings.clerk_secret_key:
        return None
    return clerk.ClerkUsers(settings.clerk_secret_key, settings.clerk_api_url)


def build_liqpay(settings: Settings) -> liqpay.LiqPay | None:
    if not settings.liqpay_configured:
        return None
    return liqpay.LiqPay(settings.liqpay_public_key, settings.liqpay_private_key)


async def resume_campaigns(deps: Deps) -> list:
    """Campaigns left active by a previous process run again; they resume from PostgreSQL."""
    async with db.connection(deps.pool) as conn:
        campaign_ids = await runs.active_campaign_ids(conn)
    if campaign_ids:
        log.info("resuming %d active campaign(s)", len(campaign_ids))
    return deps.runtime.resume(campaign_ids)


async def serve(settings: Settings) -> None:
    await prepare_database(settings)
    async with deps_ctx(settings, with_runtime=True) as deps:
        await deps.redis.ping()
        await resume_campaigns(deps)
        sweeping = asyncio.Event()
        sweeper = asyncio.create_task(sweep_leases(deps.pool, deps.runtime, settings, until=sweeping))
        waking = asyncio.create_task(build_scheduler(settings, deps).run())  # wakes campaigns whose leads come due
        # Every active Telegram account's actor reads the replies its leads send.
        inboxes = asyncio.create_task(telegram_inbox.keep_listening(
            lambda: replies.listening_accounts(deps.pool), deps.runtime.listen_telegram, until=sweeping))
        releasing = asyncio.create_task(build_number_releaser(settings, deps).run(until=sweeping))  # lapsed plans
        runner = web.AppRunner(build_app(settings, deps), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, shutdown_timeout=SHUTDOWN_SECONDS)
        await site.start()
        log.info("Outreach Runtime listening on http://%s:%s", settings.host, settings.port)
        try:
            await wait_for_signal()
        finally:
            # Stop accepting, close the progress feeds, let in-flight requests finish; running campaigns
            # belong to their actors (on a cluster they go on; a local Ray resumes them at the next start).
            log.info("shutting down: finishing in-flight requests (at most %d s)", SHUTDOWN_SECONDS)
            sweeping.set()
            waking.cancel()
            await runner.cleanup()
            await sweeper
            await inboxes
            await releasing
        log.info("stopped")


async def sweep_leases(pool, runtime, settings: Settings, until: asyncio.Event | None = None) -> list:
    """In every API process: resume the active campaigns whose lease expired, i.e. whose run stopped without
    recording it (storage.leases). Every third of a lease until `until` is set; once without it (tests).
    Returns the campaigns the last pass resumed."""
    holder = f"sweeper:{socket.gethostname()}:{os.getpid()}"
    while True:
        resumed = []
        try:
            async with db.transaction(pool) as conn:
                resumed = await leases.claim_expired(conn, holder, settings.campaign_lease_seconds)
            if resumed:
                log.warning("resuming %d campaign(s) nobody was running: %s", len(resumed), resumed)
                await asyncio.to_thread(runtime.resume, resumed)  # actor lookups block on Ray's GCS
        except Exception:  # the database may be the reason: the next pass tries again
            log.warning("lease sweep failed", exc_info=True)
        if until is None:
            return resumed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), settings.campaign_lease_seconds / 3)
        if until.is_set():
            return resumed


def build_number_releaser(settings: Settings, deps: Deps) -> NumberReleaser:
    """Releases at Twilio the numbers of lapsed plans once their grace period ends (every API process sweeps;
    PostgreSQL gives each due number to one of them)."""
    return NumberReleaser(number_release.PgNumberReleases(deps.pool), deps.twilio,
                          clock.clock_for(settings.shared_test_clock, deps.redis))


def build_scheduler(settings: Settings, deps: Deps) -> scheduler.Scheduler:
    """This process's scheduler (one in each API process; PostgreSQL keeps them from waking a campaign twice)."""
    return scheduler.Scheduler(timers.PgTimerStore(deps.pool), deps.runtime.submit,
                               clock.clock_for(settings.shared_test_clock, deps.redis))


SHUTDOWN_SECONDS = 25  # under docker compose's 30 s stop_grace_period


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


DEMO_TEMPLATES = {
    "email": {"subject": "A quick idea for {{company}}",
              "body": "Hi {{firstName}},\n\nWe help teams like {{company}} reach more customers. Worth a call?"},
    "telegram": "Hi {{firstName}}! Quick question about {{company}}: worth a short call this week?",
}


async def run_demo(settings: Settings, lead_count: int, out) -> dict:
    """Sandbox end to end: an org with leads and a 3-channel campaign, executed, watched live."""
    settings = dataclasses.replace(settings, sandbox=True, host="127.0.0.1")
    await prepare_database(settings)
    async with deps_ctx(settings, with_runtime=True) as deps:
        runner = web.AppRunner(build_app(settings, deps), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", settings.port)
        await site.start()
        try:
            return await drive_demo(settings, deps, f"127.0.0.1:{settings.port}", lead_count, out)
        finally:
            await runner.cleanup()


async def drive_demo(settings: Settings, deps: Deps, address: str, lead_count: int, out) -> dict:
    async with db.transaction(deps.pool) as conn:
        org_id = await orgs.local_org(conn, f"Demo {time.strftime('%Y-%m-%d %H:%M:%S')} {secrets.token_hex(2)}")
        await orgs.set_plan(conn, org_id, "enterprise")
        await orgs.add_sandbox_channels(conn, org_id, accounts=2, daily_limit=max(lead_count, 10))
        _, key = await api_keys.create_key(conn, org_id, "demo")
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(f"http://{address}", headers=headers) as http:
        campaign_id = await create_demo_campaign(http, lead_count)
        out.write(f"sandbox demo: {lead_count} leads, channels email > telegram > voice, campaign {campaign_id}\n")
        started = time.monotonic()
        async with http.post(f"/api/dashboard/campaigns/{campaign_id}/execute?wait=false") as response:
            websocket_path = (await response.json())["websocket"]
        final = await terminal.watch(f"ws://{address}{websocket_path}", key, out)
    for line in terminal.summary_lines(final, time.monotonic() - started):
        out.write(line + "\n")
    return final


async def create_demo_campaign(http: aiohttp.ClientSession, lead_count: int) -> str:
    form = aiohttp.FormData()
    form.add_field("file", demo_leads_csv(lead_count), filename="demo.csv", content_type="text/csv")
    async with http.post("/api/dashboard/leads/import", data=form) as response:
        response.raise_for_status()
    body = {"name": "Sandbox demo", "channels": ["email", "telegram", "voice"],
            "channelPriority": ["email", "telegram", "voice"],
            "settings": {"templates": DEMO_TEMPLATES, "callingWindow": {"start": "00:00", "end": "23:59"}}}
    async with http.post("/api/dashboard/campaigns", json=body) as response:
        campaign_id = (await response.json())["id"]
    lead_ids = await all_lead_ids(http)
    for start in range(0, len(lead_ids), 5000):
        async with http.post(f"/api/dashboard/campaigns/{campaign_id}/leads",
                             json={"leadIds": lead_ids[start:start + 5000]}) as response:
            response.raise_for_status()
    return campaign_id


async def all_lead_ids(http: aiohttp.ClientSession) -> list[str]:
    ids, page = [], 1
    while True:
        async with http.get(f"/api/dashboard/leads?limit=100&page={page}") as response:
            body = await response.json()
        ids += [lead["id"] for lead in body["leads"]]
        if page >= body["pagination"]["totalPages"]:
            return ids
        page += 1


def demo_leads_csv(count: int) -> bytes:
    """Leads with a realistic mix of contacts, so fallbacks to Telegram and voice happen."""
    rows = ["firstName,lastName,email,telegram,phone,company"]
    for index in range(count):
        email = f"lead{index}@example.com" if index % 10 < 8 else ""
        telegram = f"lead_{index}" if index % 3 else ""
        phone = f"+1555{index:07d}" if index % 2 else ""
        rows.append(f"Lead{index},Demo,{email},{telegram},{phone},Company {index % 50}")
    return ("\n".join(rows) + "\n").encode()


async def import_leads_file(settings: Settings, path: str, org_name: str, out) -> dict:
    """`outreach leads import`: the HTTP import's reading, checks, dedupe, lead quota and all-or-nothing COPY, a
    chunk at a time, so memory does not grow with the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as binary, io.TextIOWrapper(binary, encoding="utf-8-sig", newline="") as text:
        reader = lead_csv.LeadCsvReader(text)
        out.write(terminal.bar(0, size, "bytes read"))
        await prepare_database(settings)
        async with db.pool_ctx(settings.database_url, min_size=1, max_size=1) as pool:
            async with db.transaction(pool) as conn:
                org_id = await orgs.local_org(conn, org_name)
                quota = await usage.plan_quota(conn, org_id, settings.plan_limits, "leads")
                copied, imported = await lead_import.import_chunks(
                    conn, org_id, file_chunks(reader), quota,
                    on_progress=lambda rows: out.write(terminal.bar(binary.tell(), size,
                                                                    f"bytes read, {rows:,} rows copied")))
    out.write("\n")
    return {"imported": imported, "total": reader.total, "skipped": reader.total - imported,
            "duplicates": copied - imported, "errors": reader.errors, "error_count": reader.error_count}


async def file_chunks(reader: lead_csv.LeadCsvReader):
    while chunk := reader.next_chunk(LEAD_IMPORT_CHUNK):
        yield chunk


async def create_api_key(settings: Settings, org_name: str, key_name: str) -> tuple[dict, str]:
    await prepare_database(settings)
    async with db.pool_ctx(settings.database_url, min_size=1, max_size=1) as pool:
        async with db.transaction(pool) as conn:
            org_id = await orgs.local_org(conn, org_name)
            row, key = await api_keys.create_key(conn, org_id, key_name)
    return {**row, "org_id": org_id}, key


async def add_telegram_account(settings: Settings, phone: str, *, active: bool, daily_limit: int | None,
                               ask_code: telegram.Prompt, ask_password: telegram.Prompt, client=None) -> dict:
    """Log a Telegram account in (code, then 2FA password) and store its session encrypted.

    `client` is an unconnected Telethon client to log in with (tests pass one wired to a fake).
    """
    if not (settings.telegram_api_id and settings.telegram_api_hash):
        raise errors.ConfigError("TELEGRAM_API_ID and TELEGRAM_API_HASH are required to log in a Telegram account")
    await prepare_database(settings)  # a database problem shows before Telegram sends a code
    phone = telegram_accounts.normalize_phone(phone)
    client = client or telegram.build_client(None, settings.telegram_api_id, settings.telegram_api_hash)
    login = await telegram.log_in(client, phone, ask_code, ask_password)
    session = crypto.encrypt(settings.secret_key, login.session)
    async with db.pool_ctx(settings.database_url, min_size=1, max_size=1) as pool:
        async with db.transaction(pool) as conn:
            return await telegram_accounts.save_login(conn, phone, session, login.username, login.display_name,
                                                      "active" if active else "warming_up", daily_limit)


async def assign_telegram_account(settings: Settings, account: str, org: str) -> dict:
    await prepare_database(settings)
    async with db.pool_ctx(settings.database_url, min_size=1, max_size=1) as pool:
        async with db.transaction(pool) as conn:
            return await telegram_accounts.assign_account(conn, account, org)


async def list_telegram_accounts(settings: Settings) -> list[dict]:
    await prepare_database(settings)
    async with db.pool_ctx(settings.database_url, min_size=1, max_size=1) as pool:
        async with db.connection(pool) as conn:
            return await telegram_accounts.list_all_accounts(conn, warmup=settings.telegram_warmup)
