"""The senders a campaign's channels go through, built from settings: the real provider adapters, their
sandbox twins, or a sender that refuses with the setting to fix."""
from __future__ import annotations

import email.utils
import functools
import logging

from outreach.actors.dispatchers import EmailDispatcher, GatedEmail
from outreach.actors.routing import AccountTelegramDispatcher, EntityActors, LineVoiceDispatcher
from outreach.actors.telegram_account import ACCOUNT_UNAVAILABLE
from outreach.actors.voice_line import AgentCaller
from outreach.providers import resend, sandbox, telegram, twilio, voice_agent
from outreach.runtime import crypto, errors, optout
from outreach.runtime.config import Settings
from outreach.runtime.ports import SendResult
from outreach.storage import clock, db, email_senders, rate_limits, telegram_accounts
from outreach.storage.calls import CallLogStore

log = logging.getLogger(__name__)
CALL_END_GRACE_SECONDS = 120  # status callbacks can trail the end of a call


async def build_dispatchers(settings: Settings, pool, campaign: dict, entities: EntityActors, redis=None,
                            database=None) -> dict:
    """`database`: the run's store (is_reachable, wait_reachable); email sends wait while it cannot record them."""
    dispatchers = {"telegram": AccountTelegramDispatcher(entities, pool, campaign["org_id"], settings.telegram_warmup,
                                                         clock.clock_for(settings.shared_test_clock, redis)),
                   "voice": LineVoiceDispatcher(entities, pool, campaign)}
    if settings.sandbox:
        outcomes = sandbox_outcomes(settings, "email", campaign)
        sender = settings.email_from or "Outreach Sandbox <sandbox@outreach.invalid>"
        dispatchers["email"] = EmailDispatcher(sandbox.SandboxEmail(outcomes), sender,
                                               unsubscribe=unsubscribe_links(settings, sender))
    else:
        dispatchers["email"] = await email_dispatcher(settings, pool, campaign["org_id"], redis)
    if database is not None:
        dispatchers["email"].sender = GatedEmail(dispatchers["email"].sender, database)
    return dispatchers


async def email_dispatcher(settings: Settings, pool, org_id, redis=None) -> EmailDispatcher:
    """Resend, from the org's saved sender, else OUTREACH_EMAIL_FROM; without a key or a sender every send
    is refused with the setting to fix (the leads stay pending for email)."""
    if not settings.resend_configured:
        return EmailDispatcher(UnconfiguredEmail("Email is not configured: set RESEND_API_KEY"), "")
    try:
        async with db.connection(pool) as conn:
            sender = await email_senders.email_sender(conn, org_id)
    except errors.Invalid as exc:  # its address is not proven yet: nothing goes out from it, the leads wait
        return EmailDispatcher(UnconfiguredEmail(exc.message), "")
    if sender is None and not settings.email_from:
        reason = "No email sender: save the organization's email settings, or set OUTREACH_EMAIL_FROM"
        return EmailDispatcher(UnconfiguredEmail(reason), "")
    from_address, reply_to = (sender["from"], sender["reply_to"]) if sender else (settings.email_from, None)
    client = resend_client(settings.resend_api_key, settings.resend_api_url, settings.resend_rate_per_second, redis,
                           settings.resend_retry_seconds, settings.resend_timeout_seconds)
    return EmailDispatcher(client, from_address, reply_to, unsubscribe_links(settings, reply_to or from_address))


def unsubscribe_links(settings: Settings, mailbox: str):
    """How each campaign email gets its List-Unsubscribe headers: a link signed with the secret key, and a
    mailto to the address that takes replies (a reply asking to stop is honoured by the Resend webhook)."""
    mailto = email.utils.parseaddr(mailbox or "")[1] or None

    def headers(org_id, address: str) -> dict[str, str]:
        try:
            token = optout.unsubscribe_token(settings.secret_key, org_id, address)
        except errors.ServiceError:  # no secret key, or not an address: the provider refuses such a send anyway
            log.error("no unsubscribe link for a campaign email of org %s", org_id)
            return {}
        return optout.list_unsubscribe_headers(settings.public_url, token, mailto)

    return headers


@functools.cache
def resend_client(api_key: str, base_url: str, rate_per_second: int, redis=None,
                  retry_seconds: int = 0, timeout: int = 10) -> resend.ResendEmail:
    """One per process and key: every run in this actor shares its session; with Redis, the account's rate
    limit is shared by every process that sends through it. Campaign sends retry transient errors for
    `retry_seconds` (RESEND_RETRY_SECONDS) with their idempotency key."""
    return resend.ResendEmail(api_key, base_url, rate_per_second=rate_per_second, retry_seconds=retry_seconds,
                              timeout=timeout, limiter=shared_limiter(redis, "resend", api_key, rate_per_second))


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
    # receive_updates: the same client (one session, one process) listens for the leads' replies
    client = telegram.build_client(plain, settings.telegram_api_id, settings.telegram_api_hash, True)
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
