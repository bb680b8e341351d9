"""Settings, read from the environment in this one place."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from outreach.runtime import errors, pacing, policy
from outreach.runtime.errors import ConfigError

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/outreach"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    # Unset DATABASE_URL / REDIS_URL: the CLI may start embedded servers under `home` (see outreach/embedded.py).
    database_url_given: bool = True
    redis_url_given: bool = True
    home: str = ""
    log_format: str | None = None  # "json" or "text"; unset: JSON for `serve`, text for the other commands
    secret_key: str = ""
    production: bool = False
    sandbox: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    clerk_jwks_url: str | None = None
    clerk_issuer: str | None = None
    clerk_authorized_parties: tuple[str, ...] = ()
    clerk_secret_key: str | None = None  # Clerk's Backend API: a user's email when the session token has none
    demo_telegram_account: str | None = None  # the Telegram account (id) that sends POST /api/demo/telegram
    clerk_api_url: str = "https://api.clerk.com"
    clerk_webhook_secret: str | None = None  # Svix secret of Clerk's webhook (membership removals revoke keys)
    ray_address: str | None = None
    max_import_bytes: int = 20 * 1024 * 1024
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_base_url: str | None = None
    resend_api_key: str | None = None
    resend_api_url: str = "https://api.resend.com"
    email_from: str | None = None
    openrouter_api_key: str | None = None
    openrouter_base_url: str = "https://openrouter.ai"
    voice_agent_url: str | None = None
    voice_agent_secret: str | None = None
    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_base_url: str | None = None
    liqpay_public_key: str | None = None
    liqpay_private_key: str | None = None
    # Billing: monthly limits per plan (OUTREACH_PLAN_LIMITS), Stripe price ids and LiqPay UAH amounts per paid plan.
    # Unpaid organizations are on plan_limits.unpaid: `free` here; from the environment, OUTREACH_DEFAULT_PLAN, else
    # `self-hosted` (no limits) when neither Stripe nor LiqPay is configured (read_plan_table).
    plan_limits: dict = dataclasses.field(default_factory=lambda: policy.PlanTable(policy.DEFAULT_PLAN_LIMITS))
    stripe_prices: dict = dataclasses.field(default_factory=dict)
    liqpay_amounts: dict = dataclasses.field(default_factory=lambda: dict(policy.DEFAULT_LIQPAY_AMOUNTS))
    telegram_api_id: int | None = None
    telegram_api_hash: str | None = None
    telegram_pacing_override: tuple[float, float] | None = None
    telegram_warmup_start: int = pacing.DEFAULT_WARMUP_START  # a new account's limit on its first active day
    telegram_warmup_step: int = pacing.DEFAULT_WARMUP_STEP  # added each day after, up to its maxDailyMessages
    telegram_spread_override: bool | None = None  # spread a day's quota over the sending window; unset: not in sandbox
    sandbox_latency_ms: int = 20
    sandbox_seed: int = 7
    ray_num_cpus: int = 2
    resend_webhook_secret: str | None = None
    resend_rate_per_second: int = 10
    resend_retry_seconds: int = 900  # how long an email is retried (5xx, 429, resets, timeouts) before it fails
    resend_timeout_seconds: int = 10  # a campaign send's answer later than this is retried with its key
    campaign_lease_seconds: int = 30  # an active campaign whose actor stopped renewing this long is resumed
    # Tests only: the runner and the scheduler read the time from Redis (storage.clock.SharedTestClock), so a test
    # moves it for every process at once. Never set in production.
    shared_test_clock: bool = False
    voice_max_call_seconds: int = 600  # Twilio's TimeLimit for a campaign call; the line waits a little longer
    demo_emails_per_day: int = 200  # public demo emails a day, across replicas
    # Per-organization rates (a minute, shared by every API process) of routes that call a paid provider.
    email_generate_per_minute: int = 10
    number_search_per_minute: int = 30
    number_release_grace_days: int = 7  # a lapsed plan's numbers are released at Twilio after this many days

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        reader = _Reader(env)
        settings = cls(
            database_url=reader.text("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=reader.text("REDIS_URL") or DEFAULT_REDIS_URL,
            database_url_given=reader.text("DATABASE_URL") is not None,
            redis_url_given=reader.text("REDIS_URL") is not None,
            home=reader.text("OUTREACH_HOME") or default_home(env),
            log_format=reader.choice("OUTREACH_LOG_FORMAT", ("json", "text")),
            secret_key=reader.text("OUTREACH_SECRET_KEY") or "",
            production=reader.flag("OUTREACH_PRODUCTION"),
            sandbox=reader.flag("OUTREACH_SANDBOX"),
            host=reader.text("OUTREACH_HOST") or "127.0.0.1",
            port=reader.integer("OUTREACH_PORT", 8080),
            public_url=(reader.text("OUTREACH_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
            clerk_jwks_url=reader.text("CLERK_JWKS_URL"),
            clerk_issuer=reader.text("CLERK_ISSUER"),
            clerk_authorized_parties=reader.words("CLERK_AUTHORIZED_PARTIES"),
            clerk_secret_key=reader.text("CLERK_SECRET_KEY"),
            demo_telegram_account=reader.text("OUTREACH_DEMO_TELEGRAM_ACCOUNT"),
            clerk_api_url=(reader.text("CLERK_API_URL") or "https://api.clerk.com").rstrip("/"),
            clerk_webhook_secret=reader.text("CLERK_WEBHOOK_SECRET"),
            ray_address=reader.text("RAY_ADDRESS"),
            max_import_bytes=reader.integer("OUTREACH_MAX_IMPORT_BYTES", 20 * 1024 * 1024),
            twilio_account_sid=reader.text("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=reader.text("TWILIO_AUTH_TOKEN"),
            twilio_base_url=reader.text("TWILIO_BASE_URL"),
            resend_api_key=reader.text("RESEND_API_KEY"),
            resend_api_url=(reader.text("RESEND_API_URL") or "https://api.resend.com").rstrip("/"),
            email_from=reader.text("OUTREACH_EMAIL_FROM"),
            openrouter_api_key=reader.text("OPENROUTER_API_KEY"),
            openrouter_base_url=(reader.text("OPENROUTER_BASE_URL") or "https://openrouter.ai").rstrip("/"),
            voice_agent_url=reader.text("VOICE_AGENT_URL"),
            voice_agent_secret=reader.text("VOICE_AGENT_SECRET"),
            stripe_secret_key=reader.text("STRIPE_SECRET_KEY"),
            stripe_publishable_key=reader.text("STRIPE_PUBLISHABLE_KEY"),
            stripe_webhook_secret=reader.text("STRIPE_WEBHOOK_SECRET"),
            stripe_base_url=reader.text("STRIPE_BASE_URL"),
            liqpay_public_key=reader.text("LIQPAY_PUBLIC_KEY"),
            liqpay_private_key=reader.text("LIQPAY_PRIVATE_KEY"),
            plan_limits=read_plan_table(reader),
            stripe_prices=read_per_plan(reader, "STRIPE_PRICE_", reader.text, {}),
            liqpay_amounts=read_per_plan(reader, "LIQPAY_AMOUNT_", reader.positive, policy.DEFAULT_LIQPAY_AMOUNTS),
            telegram_api_id=reader.integer("TELEGRAM_API_ID", None),
            telegram_api_hash=reader.text("TELEGRAM_API_HASH"),
            telegram_pacing_override=reader.seconds_range("OUTREACH_TELEGRAM_PACING", None),
            telegram_warmup_start=reader.integer("OUTREACH_TELEGRAM_WARMUP_START", pacing.DEFAULT_WARMUP_START),
            telegram_warmup_step=reader.integer("OUTREACH_TELEGRAM_WARMUP_STEP", pacing.DEFAULT_WARMUP_STEP),
            telegram_spread_override=(None if reader.text("OUTREACH_TELEGRAM_SPREAD") is None
                                      else reader.flag("OUTREACH_TELEGRAM_SPREAD")),
            sandbox_latency_ms=reader.integer("OUTREACH_SANDBOX_LATENCY_MS", 20),
            sandbox_seed=reader.integer("OUTREACH_SANDBOX_SEED", 7),
            ray_num_cpus=reader.integer("OUTREACH_RAY_NUM_CPUS", 2),
            resend_webhook_secret=reader.text("RESEND_WEBHOOK_SECRET"),
            resend_rate_per_second=reader.integer("RESEND_RATE_PER_SECOND", 10),
            resend_retry_seconds=reader.integer("RESEND_RETRY_SECONDS", 900),
            resend_timeout_seconds=reader.integer("RESEND_TIMEOUT_SECONDS", 10),
            campaign_lease_seconds=reader.integer("OUTREACH_CAMPAIGN_LEASE_SECONDS", 30),
            shared_test_clock=reader.flag("OUTREACH_SHARED_TEST_CLOCK"),
            voice_max_call_seconds=reader.integer("OUTREACH_VOICE_MAX_CALL_SECONDS", 600),
            demo_emails_per_day=reader.positive("OUTREACH_DEMO_EMAILS_PER_DAY") or 200,
            email_generate_per_minute=reader.positive("OUTREACH_EMAIL_GENERATE_PER_MINUTE") or 10,
            number_search_per_minute=reader.positive("OUTREACH_NUMBER_SEARCH_PER_MINUTE") or 30,
            number_release_grace_days=reader.integer("OUTREACH_NUMBER_RELEASE_GRACE_DAYS", 7),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations that cannot work, naming the setting to fix."""
        if self.production and not self.secret_key:
            raise ConfigError("OUTREACH_SECRET_KEY is required when OUTREACH_PRODUCTION is set")
        if self.production and not self.clerk_jwks_url:
            raise ConfigError("CLERK_JWKS_URL is required when OUTREACH_PRODUCTION is set")
        if self.production and not self.clerk_authorized_parties:  # cookie sessions need the allowed origins
            raise ConfigError("CLERK_AUTHORIZED_PARTIES is required when OUTREACH_PRODUCTION is set")
        pairs = [
            ("TWILIO_ACCOUNT_SID", self.twilio_account_sid, "TWILIO_AUTH_TOKEN", self.twilio_auth_token),
            ("LIQPAY_PUBLIC_KEY", self.liqpay_public_key, "LIQPAY_PRIVATE_KEY", self.liqpay_private_key),
            ("TELEGRAM_API_ID", self.telegram_api_id, "TELEGRAM_API_HASH", self.telegram_api_hash),
        ]
        for name_a, value_a, name_b, value_b in pairs:
            if bool(value_a) != bool(value_b):
                missing = name_b if value_a else name_a
                present = name_a if value_a else name_b
                raise ConfigError(f"{missing} is required when {present} is set")
        if self.resend_rate_per_second < 1:
            raise ConfigError(f"RESEND_RATE_PER_SECOND must be at least 1, got {self.resend_rate_per_second}")
        if self.resend_timeout_seconds < 1:
            raise ConfigError(f"RESEND_TIMEOUT_SECONDS must be at least 1, got {self.resend_timeout_seconds}")
        if self.resend_retry_seconds < 0:
            raise ConfigError(f"RESEND_RETRY_SECONDS must be 0 or more, got {self.resend_retry_seconds}")
        if self.campaign_lease_seconds < 3:
            raise ConfigError(f"OUTREACH_CAMPAIGN_LEASE_SECONDS must be at least 3, got {self.campaign_lease_seconds}")
        if self.telegram_warmup_start < 1:
            raise ConfigError(f"OUTREACH_TELEGRAM_WARMUP_START must be at least 1, got {self.telegram_warmup_start}")
        if self.telegram_warmup_step < 0:
            raise ConfigError(f"OUTREACH_TELEGRAM_WARMUP_STEP must be 0 or more, got {self.telegram_warmup_step}")
        if self.number_release_grace_days < 0:
            raise ConfigError(f"OUTREACH_NUMBER_RELEASE_GRACE_DAYS must be 0 or more, got {self.number_release_grace_days}")
        if self.voice_max_call_seconds < 1:
            raise ConfigError(f"OUTREACH_VOICE_MAX_CALL_SECONDS must be at least 1, got {self.voice_max_call_seconds}")
        for name, url in (("DATABASE_URL", self.database_url), ("REDIS_URL", self.redis_url)):
            if "://" not in url:
                raise ConfigError(f"{name} must be a URL, got {url!r}")

    @property
    def telegram_pacing(self) -> tuple[float, float]:
        """Seconds between two sends of one account, jittered: 30-90 for real accounts, brief in sandbox."""
        if self.telegram_pacing_override is not None:
            return self.telegram_pacing_override
        return (0.05, 0.2) if self.sandbox else (30.0, 90.0)

    @property
    def telegram_warmup(self) -> pacing.Warmup:
        return pacing.Warmup(self.telegram_warmup_start, self.telegram_warmup_step)

    @property
    def telegram_spread(self) -> bool:
        """Spread each account's daily quota over the sending window: yes for real accounts, not in sandbox."""
        return (not self.sandbox) if self.telegram_spread_override is None else self.telegram_spread_override

    @property
    def twilio_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def resend_configured(self) -> bool:
        return bool(self.resend_api_key) and not self.resend_api_key.startswith("re_placeholder")

    @property
    def stripe_configured(self) -> bool:
        return bool(self.stripe_secret_key)

    @property
    def liqpay_configured(self) -> bool:
        return bool(self.liqpay_public_key and self.liqpay_private_key)

    @property
    def default_plan(self) -> str:
        """The plan of an organization that has paid for none (policy.plan_in_effect)."""
        return policy.plan_in_effect(None, self.plan_limits)


def read_plan_limits(reader: "_Reader") -> dict:
    try:
        return policy.parse_plan_limits(reader.text("OUTREACH_PLAN_LIMITS"))
    except errors.Invalid as exc:
        raise ConfigError(f"OUTREACH_PLAN_LIMITS {exc.message}") from None


def read_plan_table(reader: "_Reader") -> policy.PlanTable:
    """The limits of each plan, and the plan of organizations that pay for none: OUTREACH_DEFAULT_PLAN, else
    `free` where Stripe or LiqPay can take a payment and `self-hosted` (not limited) where nothing can."""
    billed = bool(reader.text("STRIPE_SECRET_KEY") or reader.text("LIQPAY_PUBLIC_KEY"))
    unpaid = reader.choice("OUTREACH_DEFAULT_PLAN", policy.DEFAULT_PLAN_CHOICES)
    return policy.PlanTable(read_plan_limits(reader), unpaid or ("free" if billed else policy.SELF_HOSTED))


def read_per_plan(reader: "_Reader", prefix: str, read, defaults: dict) -> dict:
    """One variable per paid plan (STRIPE_PRICE_STARTER, ...); a plan left unset keeps its default, if any."""
    values = {plan: read(prefix + plan.upper()) for plan in policy.PAID_PLANS}
    return {plan: defaults[plan] if value is None else value for plan, value in values.items()
            if value is not None or plan in defaults}


def default_home(env: Mapping[str, str]) -> str:
    """The user's data folder: where a generated secret key and embedded servers' data live."""
    data = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "outreach")


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def choice(self, name: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(name)
        if value is not None and value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def flag(self, name: str) -> bool:
        value = self.env.get(name, "").strip().lower()
        if value in TRUE_WORDS:
            return True
        if value in FALSE_WORDS:
            return False
        raise ConfigError(f"{name} must be 1 or 0, got {value!r}")

    def integer(self, name: str, default: int | None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None

    def positive(self, name: str) -> int | None:
        value = self.integer(name, None)
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be a positive integer, got {value}")
        return value

    def words(self, name: str) -> tuple[str, ...]:
        return tuple(word.strip() for word in (self.text(name) or "").split(",") if word.strip())

    def seconds_range(self, name: str, default: tuple[float, float] | None) -> tuple[float, float] | None:
        """`30-90` (seconds between sends, jittered)."""
        value = self.text(name)
        if value is None:
            return default
        low, _, high = value.partition("-")
        try:
            bounds = (float(low), float(high or low))
        except ValueError:
            raise ConfigError(f"{name} must look like 30-90 (seconds), got {value!r}") from None
        if bounds[0] < 0 or bounds[1] < bounds[0]:
            raise ConfigError(f"{name} must be two non-negative numbers, low-high, got {value!r}")
        return bounds
