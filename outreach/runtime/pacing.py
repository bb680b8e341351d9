"""How fast one Telegram account may send: warm-up, the day's quota spread over the sending window, and
whether it may take a send now (pure rules; storage.telegram_accounts applies them under a row lock)."""
from __future__ import annotations

import dataclasses
import datetime
import zoneinfo

UTC = datetime.timezone.utc
DEFAULT_WARMUP_START = 5
DEFAULT_WARMUP_STEP = 5


@dataclasses.dataclass(frozen=True)
class Warmup:
    """A new account sends `start` messages on its first active day and `step` more each day after."""

    start: int = DEFAULT_WARMUP_START
    step: int = DEFAULT_WARMUP_STEP


def warmup_limit(configured: int, started_on: datetime.date | None, today: datetime.date, warmup: Warmup) -> int:
    """Today's daily limit: the ramp, never above the configured `maxDailyMessages`. An account without a
    warm-up start (active before warm-up existed, or a simulated one) is at its configured limit."""
    if started_on is None:
        return configured
    days = max((today - started_on).days, 0)
    return min(configured, warmup.start + warmup.step * days)


def send_gap(window_minutes: int, daily_limit: int, pacing: tuple[float, float], draw: float) -> float:
    """Seconds until the account's next send, `draw` in [0, 1) being the jitter.

    The day's quota is spread evenly over the sending window (window / limit), so an account never
    bursts it at the window's opening; that interval is jittered by the pacing's width around it. When
    the spread is shorter than the pacing's middle, the pacing alone applies (uniform low..high).
    """
    low, high = pacing
    spread = window_minutes * 60 / max(daily_limit, 1)
    centre = max(spread, (low + high) / 2)  # never below the middle, so never below `low` once jittered
    return centre + (draw - 0.5) * (high - low)


def zone_of(name: str | None) -> datetime.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError):  # malformed or unknown names; ZoneInfoNotFoundError is a KeyError
        return UTC


def account_today(zone_name: str | None, now: datetime.datetime) -> datetime.date:
    """The calendar day of an account's daily limit: in its own time zone, UTC when that is unknown."""
    return now.astimezone(zone_of(zone_name)).date()


def next_account_day(zone_name: str | None, now: datetime.datetime) -> datetime.datetime:
    """When the account's next day (and a fresh daily count) begins, as a UTC instant."""
    zone = zone_of(zone_name)
    tomorrow = now.astimezone(zone).date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(tomorrow, datetime.time(), tzinfo=zone).astimezone(UTC)


def sent_today(account: dict, now: datetime.datetime) -> int:
    """A count recorded on an earlier day is stale: the account has sent nothing today."""
    if account["daily_count_day"] != account_today(account["day_timezone"], now):
        return 0
    return account["daily_message_count"]


def effective_limit(account: dict, now: datetime.datetime, warmup: Warmup) -> int:
    """What the account may send in all today: its warm-up ramp when active, nothing in any other status."""
    if account["status"] != "active":
        return 0
    today = account_today(account["day_timezone"], now)
    return warmup_limit(account["max_daily_messages"], account["warmup_started_on"], today, warmup)


def shown_status(account: dict, now: datetime.datetime, warmup: Warmup) -> str:
    """`warming_up` for an active account whose ramp is still below its configured limit (computed, not
    stored: the ramp ends by itself); otherwise the stored status."""
    if account["status"] == "active" and effective_limit(account, now, warmup) < account["max_daily_messages"]:
        return "warming_up"
    return account["status"]


@dataclasses.dataclass(frozen=True)
class Slot:
    """May the account take a send now: `refusal` None when it may, else why not and from when it may
    (`retry_at`; None when only an operator can bring it back: banned, cooldown, not activated)."""

    refusal: str | None = None
    retry_at: datetime.datetime | None = None
    daily_limit: int = 0


def check_slot(account: dict, now: datetime.datetime, warmup: Warmup) -> Slot:
    if account["status"] != "active":
        return Slot(f"Telegram account is {account['status']}")
    if account["flood_wait_until"] is not None and account["flood_wait_until"] > now:
        return Slot("Telegram account is waiting out a flood limit", account["flood_wait_until"])
    limit = effective_limit(account, now, warmup)
    if sent_today(account, now) >= limit:
        return Slot("Telegram account daily limit reached", next_account_day(account["day_timezone"], now), limit)
    if account["next_send_at"] is not None and account["next_send_at"] > now:
        return Slot("Telegram account is pacing its sends", account["next_send_at"], limit)
    return Slot(daily_limit=limit)
