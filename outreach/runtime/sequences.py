"""Campaign sequences: the steps in `settings.sequence`, their validation and their delay arithmetic.

A step is `{"channel": "email"|"telegram"|"voice"|"any", "delay": {"days", "hours", "minutes"},
"templates": {...}, "stopOnReply": true}`. A campaign without a sequence is one step on "any" channel
with no delay: exactly the one-shot pass it always was.
"""
from __future__ import annotations

import dataclasses
import datetime
import re

from outreach.runtime import errors, templates

ANY = "any"
STEP_CHANNELS = ("any", "email", "telegram", "voice")
STEP_KEYS = {"channel", "delay", "templates", "stopOnReply"}
DELAY_KEYS = ("days", "hours", "minutes")
MAX_STEPS = 20
MAX_DELAY_DAYS = 366
DAYS_PER_UNIT = {"days": 1, "hours": 1 / 24, "minutes": 1 / 1440}
MAX_SCHEDULE_YEARS = 5
VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
KNOWN_VARIABLES = ("firstName", "lastName", "company", "fullName")


@dataclasses.dataclass(frozen=True)
class Step:
    channel: str = ANY
    delay: datetime.timedelta = datetime.timedelta(0)
    templates: dict | None = None  # None: the campaign's templates
    stop_on_reply: bool = True


ONE_SHOT = (Step(),)


def steps_of(settings: dict | None) -> tuple[Step, ...]:
    """The campaign's steps (validated); the one-shot step when it has no sequence."""
    raw = settings.get("sequence") if isinstance(settings, dict) else None
    if raw is None:
        return ONE_SHOT
    return tuple(parse_step(index, item) for index, item in enumerate(check_list(raw)))


def steps_or_one_shot(settings: dict | None) -> tuple[Step, ...]:
    """For running: a sequence stored before validation existed that no longer passes runs as one step."""
    try:
        return steps_of(settings)
    except errors.Invalid:
        return ONE_SHOT


def validate_settings(settings: dict | None) -> None:
    """Raise errors.Invalid naming what is wrong in `settings.sequence` (create and update call this)."""
    steps_of(settings)


def check_list(raw) -> list:
    if not isinstance(raw, list) or not raw:
        raise errors.Invalid("settings.sequence must be a non-empty array of steps")
    if len(raw) > MAX_STEPS:
        raise errors.Invalid(f"settings.sequence has {len(raw)} steps; at most {MAX_STEPS} are allowed")
    return raw


def parse_step(index: int, item) -> Step:
    where = f"settings.sequence[{index}]"
    if not isinstance(item, dict):
        raise errors.Invalid(f"{where} must be an object")
    unknown = sorted(set(item) - STEP_KEYS)
    if unknown:
        raise errors.Invalid(f"{where} has unknown field(s): {', '.join(unknown)}")
    channel = item.get("channel", ANY)
    if channel not in STEP_CHANNELS:
        raise errors.Invalid(f"{where}.channel must be one of {', '.join(STEP_CHANNELS)}, got {channel!r}")
    stop = item.get("stopOnReply", True)
    if not isinstance(stop, bool):
        raise errors.Invalid(f"{where}.stopOnReply must be true or false")
    return Step(channel, parse_delay(where, item.get("delay")), parse_templates(where, item.get("templates")), stop)


def parse_delay(where: str, raw) -> datetime.timedelta:
    if raw is None:
        return datetime.timedelta(0)
    if not isinstance(raw, dict) or not set(raw) <= set(DELAY_KEYS):
        raise errors.Invalid(f"{where}.delay must be an object with some of days, hours, minutes")
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise errors.Invalid(f"{where}.delay.{key} must be a number")
        if value < 0:
            raise errors.Invalid(f"{where}.delay.{key} must not be negative")
    # checked in days before timedelta is built: a huge number (1e308) would overflow it, never a 400
    if not sum(raw[key] * DAYS_PER_UNIT[key] for key in raw) <= MAX_DELAY_DAYS:
        raise errors.Invalid(f"{where}.delay must be at most {MAX_DELAY_DAYS} days")
    delay = datetime.timedelta(**{key: raw[key] for key in raw})
    if delay > datetime.timedelta(days=MAX_DELAY_DAYS):
        raise errors.Invalid(f"{where}.delay must be at most {MAX_DELAY_DAYS} days")
    return delay


def parse_templates(where: str, raw) -> dict | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not set(raw) <= {"telegram", "email"}:
        raise errors.Invalid(f"{where}.templates must be an object with telegram and/or email")
    if "telegram" in raw and not isinstance(raw["telegram"], str):
        raise errors.Invalid(f"{where}.templates.telegram must be a string")
    email = raw.get("email")
    if email is not None and not (isinstance(email, dict) and set(email) == {"subject", "body"}
                                  and all(isinstance(value, str) for value in email.values())):
        raise errors.Invalid(f"{where}.templates.email must be an object with a subject and a body (strings)")
    texts = {"telegram": raw.get("telegram"), "email.subject": (email or {}).get("subject"),
             "email.body": (email or {}).get("body")}
    for name, text in texts.items():
        check_variables(f"{where}.templates.{name}", text)
    return raw


def check_variables(where: str, text: str | None) -> None:
    for match in VARIABLE.finditer(text or ""):
        if match.group(1) not in KNOWN_VARIABLES:
            known = ", ".join("{{" + name + "}}" for name in KNOWN_VARIABLES)
            raise errors.Invalid(f"{where} uses an unknown variable {{{{{match.group(1)}}}}} (known: {known})")


def step_settings(settings: dict, step: Step) -> dict:
    """The campaign settings a step's messages are written from: its own templates over the campaign's."""
    if not step.templates:
        return settings
    return {**settings, "templates": {**templates.campaign_templates(settings), **step.templates}}


def first_due(now: datetime.datetime, starts_at: datetime.datetime,
              steps: tuple[Step, ...]) -> datetime.datetime | None:
    """When a lead's first step may fire, the campaign starting for it at `starts_at`; None: at once."""
    if not (starts_at > now or steps[0].delay):
        return None
    try:
        return starts_at + steps[0].delay
    except OverflowError:  # a scheduledAt stored before it was capped: a clear refusal, never a 500
        raise errors.Invalid("scheduledAt plus the first step's delay is past the year 9999") from None


def check_scheduled_at(now: datetime.datetime, scheduled_at: datetime.datetime | None) -> None:
    """scheduledAt may be at most MAX_SCHEDULE_YEARS ahead (a far date is a typo, and would overflow the timers)."""
    if scheduled_at is not None and scheduled_at - now > datetime.timedelta(days=365 * MAX_SCHEDULE_YEARS):
        raise errors.Invalid(f"scheduledAt must be at most {MAX_SCHEDULE_YEARS} years ahead")


def next_due(sent_at: datetime.datetime, steps: tuple[Step, ...], step_index: int) -> datetime.datetime:
    """When step `step_index` may fire, its predecessor having ended at `sent_at`."""
    return sent_at + steps[step_index].delay


def is_last(steps: tuple[Step, ...], step_index: int) -> bool:
    return step_index >= len(steps) - 1


def idempotency_key(campaign_id, lead_id, step: int, channel: str) -> str:
    """`campaign:lead:channel` for the first step (as before sequences), `campaign:lead:step:channel` after."""
    return f"{campaign_id}:{lead_id}:{step}:{channel}" if step else f"{campaign_id}:{lead_id}:{channel}"


def closed_channels(windows, now: datetime.datetime, timezone: str | None, order: list[str]) -> dict[str, str]:
    """The channels of `order` whose window (windows.CampaignWindows, in the lead's time zone) is closed now,
    with why."""
    return {name: ("Outside the lead's calling window" if name == "voice" else "Outside the lead's sending window")
            for name in order if windows.next_send_time(now, timezone, name) > now}


def first_opening(windows, now: datetime.datetime, timezone: str | None,
                  candidates: list[str]) -> tuple[str, datetime.datetime] | None:
    """Of the closed channels the lead could still be reached on, the one whose window opens first, and when;
    None when there is none (no window is what holds the lead)."""
    openings = {name: windows.next_send_time(now, timezone, name) for name in candidates}
    if not openings:
        return None
    first = min(openings, key=openings.get)
    return first, openings[first]
