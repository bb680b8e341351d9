"""Sending and calling windows: when a channel may reach a lead, in the lead's local time.

A campaign may set `settings.sendingWindow` (telegram and email; absent: always open) and
`settings.callingWindow` (voice; absent: 09:00-20:00 every day), each of the form
`{"days": ["mon", ..., "fri"], "start": "09:00", "end": "18:00"}` (every key optional: all days, the
whole day). An `end` at or before `start` crosses midnight, and the part after midnight belongs to the
day the window opened (a Friday 22:00-02:00 window is open until Saturday 02:00). Times are the lead's
wall clock (`lead.timezone`, else `settings.timezone`, else UTC), so daylight saving time moves them
with the lead. Calls are also held to 08:00-21:00 local whatever the window says (CALL_GUARD).
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import zoneinfo

from outreach.runtime import errors

UTC = datetime.timezone.utc
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ALL_DAYS = frozenset(range(7))
MINUTES_A_DAY = 24 * 60
WINDOW_KEYS = ("days", "start", "end")
MESSAGE_CHANNELS = ("telegram", "email")
CALL_GUARD = (8 * 60, 21 * 60)  # 08:00-21:00 local, in minutes: no call outside it, whatever is configured
HORIZON_DAYS = 9  # a week of windows, the day before (a window crossing midnight) and one to spare


@dataclasses.dataclass(frozen=True)
class Window:
    """Open on `days` (0 = Monday) from `start` for `length` minutes (start + length may pass midnight)."""

    days: frozenset[int] = ALL_DAYS
    start: int = 0
    length: int = MINUTES_A_DAY

    @property
    def always_open(self) -> bool:
        return self.days == ALL_DAYS and self.length == MINUTES_A_DAY

    def intervals(self, first: datetime.date, count: int) -> list[tuple[datetime.datetime, datetime.datetime]]:
        """Its openings on `count` days from `first`, as naive local wall times."""
        spans = []
        for offset in range(count):
            day = first + datetime.timedelta(days=offset)
            if day.weekday() in self.days:
                opens = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(minutes=self.start)
                spans.append((opens, opens + datetime.timedelta(minutes=self.length)))
        return spans


DEFAULT_CALLING = Window(start=9 * 60, length=11 * 60)  # 09:00-20:00 every day
ALWAYS = Window()


# --- reading and validating the settings ---------------------------------------------------------------

def parse_window(value, name: str) -> Window:
    """`value` as a Window; errors.Invalid naming the setting (`name`, e.g. "sendingWindow") when malformed."""
    if not isinstance(value, dict):
        raise errors.Invalid(f'settings.{name} must be an object like {{"days": ["mon"], "start": "09:00", '
                             f'"end": "18:00"}}')
    unknown = sorted(set(value) - set(WINDOW_KEYS))
    if unknown:
        raise errors.Invalid(f"settings.{name} has unknown key {unknown[0]!r} (use days, start, end)")
    days = parse_days(value.get("days"), name)
    start = parse_minutes(value.get("start", "00:00"), f"{name}.start", allow_end_of_day=False)
    end = parse_minutes(value.get("end", "24:00"), f"{name}.end", allow_end_of_day=True)
    if start == end % MINUTES_A_DAY and "start" in value and "end" in value:
        raise errors.Invalid(f"settings.{name}.start and end must differ (omit both for the whole day)")
    length = (end - start) % MINUTES_A_DAY or MINUTES_A_DAY
    return Window(days=days, start=start, length=length)


def parse_days(value, name: str) -> frozenset[int]:
    if value is None:
        return ALL_DAYS
    if not isinstance(value, list) or not value:
        raise errors.Invalid(f'settings.{name}.days must be a non-empty list of days like ["mon", "tue"]')
    return frozenset(parse_day(day, name) for day in value)


def parse_day(day, name: str) -> int:
    """"mon" or "Monday" (any case), or an ISO day number (1 = Monday ... 7 = Sunday)."""
    if isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7:
        return day - 1
    text = day.strip().lower() if isinstance(day, str) else None
    if text in DAY_NAMES:
        return DAY_NAMES.index(text)
    if text in FULL_DAY_NAMES:
        return FULL_DAY_NAMES.index(text)
    raise errors.Invalid(f"settings.{name}.days: unknown day {day!r} (use mon, tue, wed, thu, fri, sat, sun "
                         f"or 1-7)")


def parse_minutes(value, name: str, allow_end_of_day: bool) -> int:
    """"HH:MM" as minutes after midnight; "24:00" only for an end."""
    message = f'settings.{name} must be a time like "09:00"' + (' (or "24:00")' if allow_end_of_day else "")
    if not isinstance(value, str) or len(value.strip()) != 5 or value.strip()[2] != ":":
        raise errors.Invalid(message)
    hours, minutes = value.strip()[:2], value.strip()[3:]
    if not (hours.isdigit() and minutes.isdigit()):
        raise errors.Invalid(message)
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > MINUTES_A_DAY or (total == MINUTES_A_DAY and not allow_end_of_day):
        raise errors.Invalid(message)
    return total


def parse_zone(name, setting: str = "settings.timezone") -> zoneinfo.ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise errors.Invalid(f'{setting} must be an IANA time zone such as "Europe/Kyiv"')
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError; "../x" is a ValueError
        raise errors.Invalid(f'{setting}: unknown time zone {name!r} (use an IANA name such as "Europe/Kyiv")') \
            from None


def validate_windows(settings) -> None:
    """Campaign create/update: `timezone`, `sendingWindow` and `callingWindow` are well formed, and a calling
    window leaves some time inside 08:00-21:00. Raises errors.Invalid with a message naming the setting."""
    if not isinstance(settings, dict):
        return
    if settings.get("timezone") is not None:
        parse_zone(settings["timezone"])
    if settings.get("sendingWindow") is not None:
        parse_window(settings["sendingWindow"], "sendingWindow")
    if settings.get("callingWindow") is not None:
        calling = parse_window(settings["callingWindow"], "callingWindow")
        if not guarded_intervals(calling, datetime.date(2026, 1, 5), 8):  # a Monday: every weekday once
            raise errors.Invalid("settings.callingWindow must overlap 08:00-21:00: calls are never placed "
                                 "outside it in the lead's time zone")


# --- when a lead may be reached --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CampaignWindows:
    """A campaign's windows, read once: which instant each channel may next reach a lead."""

    zone: datetime.tzinfo
    sending: Window
    calling: Window

    def window_for(self, channel: str) -> Window:
        return self.calling if channel == "voice" else self.sending

    def next_send_time(self, now: datetime.datetime, lead_timezone: str | None, channel: str) -> datetime.datetime:
        zone = lead_zone(lead_timezone, self.zone)
        window = self.window_for(channel)
        if channel != "voice" and window.always_open:
            return now
        local_day = now.astimezone(zone).date() - datetime.timedelta(days=1)
        spans = guarded_intervals(window, local_day, HORIZON_DAYS) if channel == "voice" else \
            window.intervals(local_day, HORIZON_DAYS)
        for opens, closes in spans:
            opens_at, closes_at = to_instant(opens, zone), to_instant(closes, zone)
            if closes_at > now:
                return max(opens_at, now)
        raise AssertionError("every window opens at least once a week")  # validate_windows refuses empty ones


def windows_for(settings) -> CampaignWindows:
    """The campaign's windows; a malformed stored value (saved before validation existed) reads as its
    default, as it always has."""
    settings = settings if isinstance(settings, dict) else {}
    return read_windows(freeze(settings.get("timezone")), freeze(settings.get("sendingWindow")),
                        freeze(settings.get("callingWindow")))


@functools.lru_cache(maxsize=256)
def read_windows(timezone, sending, calling) -> CampaignWindows:
    return CampaignWindows(zone=lead_zone(timezone, UTC), sending=lenient(sending, "sendingWindow", ALWAYS),
                           calling=lenient_calling(calling))


def freeze(value):
    """A hashable copy of a window setting, so parsed windows are cached per distinct setting."""
    if isinstance(value, dict):
        return tuple(sorted((str(key), freeze(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("list", tuple(freeze(item) for item in value))
    return value


def thaw(value):
    if isinstance(value, tuple) and value[:1] == ("list",):
        return [thaw(item) for item in value[1]]
    if isinstance(value, tuple):
        return {key: thaw(item) for key, item in value}
    return value


def lenient(frozen, name: str, default: Window) -> Window:
    try:
        return default if frozen is None else parse_window(thaw(frozen), name)
    except errors.Invalid:
        return default


def lenient_calling(frozen) -> Window:
    window = lenient(frozen, "callingWindow", DEFAULT_CALLING)
    return window if guarded_intervals(window, datetime.date(2026, 1, 5), 8) else DEFAULT_CALLING


def next_send_time(now: datetime.datetime, lead_timezone: str | None, campaign_settings: dict,
                   channel: str) -> datetime.datetime:
    """`now` when `channel` may reach the lead now, else the instant (UTC) its window next opens."""
    return windows_for(campaign_settings).next_send_time(now, lead_timezone, channel).astimezone(UTC)


def lead_zone(name: str | None, fallback: datetime.tzinfo) -> datetime.tzinfo:
    """The lead's time zone; an absent or unknown one is the campaign's (`fallback`)."""
    try:
        return parse_zone(name) if name else fallback
    except errors.Invalid:
        return fallback


def guarded_intervals(window: Window, first: datetime.date, count: int) -> list:
    """The window's openings cut to the hours a call may be placed (CALL_GUARD), each day it touches."""
    guard_start, guard_end = (datetime.timedelta(minutes=minute) for minute in CALL_GUARD)
    spans = []
    for opens, closes in window.intervals(first, count):
        for day in {opens.date(), (closes - datetime.timedelta(microseconds=1)).date()}:
            midnight = datetime.datetime.combine(day, datetime.time())
            start, end = max(opens, midnight + guard_start), min(closes, midnight + guard_end)
            if start < end:
                spans.append((start, end))
    return sorted(spans)


def to_instant(wall: datetime.datetime, zone: datetime.tzinfo) -> datetime.datetime:
    """A local wall time as an aware instant. A time the clocks skip (spring forward) is the moment they
    land after the skip; a time they pass twice (fall back) is its first occurrence."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    earlier = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the skip; step to where it ends
    while earlier.astimezone(zone).replace(tzinfo=None) < wall:
        earlier += datetime.timedelta(minutes=1)
    return earlier
