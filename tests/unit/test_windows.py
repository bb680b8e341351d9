"""Sending and calling windows in the lead's time zone: pure rules."""
from __future__ import annotations

import datetime

import pytest

from outreach.runtime import errors, policy, windows

UTC = datetime.timezone.utc


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).astimezone(UTC)


def next_time(now: str, zone, settings: dict, channel: str) -> datetime.datetime:
    return policy.next_send_time(at(now), zone, settings, channel)


WEEKDAYS_9_TO_18 = {"sendingWindow": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}}


def test_messages_without_a_window_go_at_once():
    now = at("2026-06-06T03:17:00+00:00")
    for channel in ("telegram", "email"):
        assert policy.next_send_time(now, "Asia/Tokyo", {}, channel) == now


def test_calls_default_to_nine_to_eight_local():
    assert next_time("2026-06-01T12:00:00+00:00", "Europe/Kyiv", {}, "voice") == at("2026-06-01T12:00:00+00:00")
    # Noon UTC is midnight in Auckland (UTC+12 in June): the window opens at 09:00 there
    assert next_time("2026-06-01T12:00:00+00:00", "Pacific/Auckland", {}, "voice") == at("2026-06-02T09:00:00+12:00")
    # 20:00 local is closed; the next call is 09:00 the next day
    assert next_time("2026-06-01T20:00:00-04:00", "America/New_York", {}, "voice") == at("2026-06-02T09:00:00-04:00")


def test_the_same_instant_in_three_time_zones():
    now = "2026-06-03T13:30:00+00:00"  # a Wednesday
    assert next_time(now, "Europe/Kyiv", WEEKDAYS_9_TO_18, "email") == at(now)  # 16:30 there
    assert next_time(now, "America/Los_Angeles", WEEKDAYS_9_TO_18, "telegram") == at("2026-06-03T09:00:00-07:00")
    assert next_time(now, "Asia/Tokyo", WEEKDAYS_9_TO_18, "email") == at("2026-06-04T09:00:00+09:00")  # 22:30


def test_days_of_week_skip_to_the_next_open_day():
    friday_evening = "2026-06-05T19:00:00+03:00"
    assert next_time(friday_evening, "Europe/Kyiv", WEEKDAYS_9_TO_18, "email") == at("2026-06-08T09:00:00+03:00")
    weekend = {"sendingWindow": {"days": [6, 7], "start": "10:00", "end": "12:00"}}  # ISO numbers: Sat, Sun
    assert next_time(friday_evening, "Europe/Kyiv", weekend, "email") == at("2026-06-06T10:00:00+03:00")
    sunday_only = {"sendingWindow": {"days": ["Sunday"]}}  # the whole day
    assert next_time(friday_evening, "Europe/Kyiv", sunday_only, "email") == at("2026-06-07T00:00:00+03:00")


def test_lead_zone_falls_back_to_the_campaign_then_utc():
    settings = {**WEEKDAYS_9_TO_18, "timezone": "Asia/Tokyo"}
    now = "2026-06-03T13:30:00+00:00"  # 22:30 in Tokyo
    assert next_time(now, None, settings, "email") == at("2026-06-04T09:00:00+09:00")
    assert next_time(now, "Not/AZone", settings, "email") == at("2026-06-04T09:00:00+09:00")
    assert next_time(now, None, WEEKDAYS_9_TO_18, "email") == at(now)  # no zone at all: UTC, 13:30
    assert next_time(now, "Europe/Kyiv", settings, "email") == at(now)  # the lead's own zone wins


def test_a_window_crossing_midnight_belongs_to_the_day_it_opens():
    nights = {"sendingWindow": {"days": ["fri"], "start": "22:00", "end": "02:00"}}
    assert next_time("2026-06-06T01:30:00+00:00", None, nights, "email") == at("2026-06-06T01:30:00+00:00")  # Sat
    assert next_time("2026-06-06T02:00:00+00:00", None, nights, "email") == at("2026-06-12T22:00:00+00:00")
    assert next_time("2026-06-05T21:00:00+00:00", None, nights, "email") == at("2026-06-05T22:00:00+00:00")
    # Thursday night: Thursday is not in the window, Friday's opening is next
    assert next_time("2026-06-04T23:00:00+00:00", None, nights, "email") == at("2026-06-05T22:00:00+00:00")


def test_calls_never_outside_eight_to_nine_whatever_is_configured():
    evening = {"callingWindow": {"start": "07:00", "end": "23:00"}}
    assert next_time("2026-06-03T07:30:00+03:00", "Europe/Kyiv", evening, "voice") == at("2026-06-03T08:00:00+03:00")
    assert next_time("2026-06-03T21:00:00+03:00", "Europe/Kyiv", evening, "voice") == at("2026-06-04T08:00:00+03:00")
    # Crossing midnight, 20:00-09:00: only 20:00-21:00 and 08:00-09:00 are left for calls
    overnight = {"callingWindow": {"start": "20:00", "end": "09:00"}}
    assert next_time("2026-06-03T12:00:00+00:00", None, overnight, "voice") == at("2026-06-03T20:00:00+00:00")
    assert next_time("2026-06-03T21:00:00+00:00", None, overnight, "voice") == at("2026-06-04T08:00:00+00:00")
    assert next_time("2026-06-04T08:59:00+00:00", None, overnight, "voice") == at("2026-06-04T08:59:00+00:00")
    # The message window does not apply to calls, nor the guard to messages
    late = {"sendingWindow": {"start": "22:00", "end": "23:30"}}
    assert next_time("2026-06-03T22:30:00+00:00", None, late, "email") == at("2026-06-03T22:30:00+00:00")
    assert next_time("2026-06-03T22:30:00+00:00", None, late, "voice") == at("2026-06-04T09:00:00+00:00")


def test_daylight_saving_time_moves_the_window_with_the_wall_clock():
    # Kyiv: UTC+2 until 29 March 2026, UTC+3 after: 09:00 local is 07:00 UTC, then 06:00 UTC
    settings = {"sendingWindow": {"start": "09:00", "end": "18:00"}}
    assert next_time("2026-03-28T20:00:00+00:00", "Europe/Kyiv", settings, "email") == at("2026-03-29T06:00:00+00:00")
    assert next_time("2026-03-27T20:00:00+00:00", "Europe/Kyiv", settings, "email") == at("2026-03-28T07:00:00+00:00")
    # New York falls back on 1 November 2026: 09:00 EDT is 13:00 UTC, 09:00 EST the next morning 14:00 UTC
    assert next_time("2026-10-31T12:00:00+00:00", "America/New_York", {}, "voice") == at("2026-10-31T13:00:00+00:00")
    assert next_time("2026-11-01T02:00:00+00:00", "America/New_York", {}, "voice") == at("2026-11-01T14:00:00+00:00")


def test_a_window_opening_in_the_skipped_hour_opens_when_the_clocks_land():
    # Berlin skips 02:00-03:00 on 29 March 2026: a 02:30 opening is 03:00 CEST (01:00 UTC)
    settings = {"sendingWindow": {"start": "02:30", "end": "05:00"}}
    assert next_time("2026-03-28T23:30:00+00:00", "Europe/Berlin", settings, "email") == at("2026-03-29T01:00:00+00:00")
    # and in the repeated hour of 25 October 2026 it opens at the first 02:30 (CEST, 00:30 UTC)
    assert next_time("2026-10-24T23:00:00+00:00", "Europe/Berlin", settings, "email") == at("2026-10-25T00:30:00+00:00")


def test_the_answer_is_utc_and_now_when_open():
    now = datetime.datetime(2026, 6, 3, 16, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=3)))
    answer = policy.next_send_time(now, "Europe/Kyiv", WEEKDAYS_9_TO_18, "telegram")
    assert answer == now and answer.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize("settings, message", [
    ({"timezone": "Mars/Olympus"}, "settings.timezone: unknown time zone 'Mars/Olympus'"),
    ({"timezone": 3}, "settings.timezone must be an IANA time zone"),
    ({"sendingWindow": "9-5"}, "settings.sendingWindow must be an object"),
    ({"sendingWindow": {"from": "09:00"}}, "settings.sendingWindow has unknown key 'from'"),
    ({"sendingWindow": {"days": []}}, "settings.sendingWindow.days must be a non-empty list"),
    ({"sendingWindow": {"days": "mon"}}, "settings.sendingWindow.days must be a non-empty list"),
    ({"sendingWindow": {"days": ["mon", "funday"]}}, "settings.sendingWindow.days: unknown day 'funday'"),
    ({"sendingWindow": {"days": [0]}}, "settings.sendingWindow.days: unknown day 0"),
    ({"sendingWindow": {"start": "9am"}}, 'settings.sendingWindow.start must be a time like "09:00"'),
    ({"sendingWindow": {"start": "24:00"}}, 'settings.sendingWindow.start must be a time like "09:00"'),
    ({"sendingWindow": {"end": "18:60"}}, 'settings.sendingWindow.end must be a time like "09:00" (or "24:00")'),
    ({"sendingWindow": {"start": "09:00", "end": "09:00"}}, "settings.sendingWindow.start and end must differ"),
    ({"callingWindow": {"start": "22:00", "end": "06:00"}}, "settings.callingWindow must overlap 08:00-21:00"),
    ({"callingWindow": {"start": "nine"}}, 'settings.callingWindow.start must be a time like "09:00"'),
])
def test_invalid_settings_are_refused_with_a_clear_message(settings, message):
    with pytest.raises(errors.Invalid) as caught:
        policy.validate_windows(settings)
    assert caught.value.message.startswith(message)


def test_valid_settings_pass():
    policy.validate_windows({})
    policy.validate_windows({"timezone": "America/New_York", "sendingWindow": {"days": [1, "Tue", "wednesday"],
                             "start": "08:30", "end": "24:00"}, "callingWindow": {"start": "20:00", "end": "09:00"}})
    policy.validate_windows({"sendingWindow": None, "callingWindow": None, "timezone": None})


def test_malformed_stored_windows_read_as_their_defaults():
    broken = {"callingWindow": {"start": "nine"}, "sendingWindow": {"days": []}, "timezone": {"zone": 1}}
    now = "2026-06-03T05:00:00+00:00"
    assert next_time(now, None, broken, "email") == at(now)
    assert next_time(now, None, broken, "voice") == at("2026-06-03T09:00:00+00:00")
    outside_guard = {"callingWindow": {"start": "22:00", "end": "06:00"}}
    assert next_time(now, None, outside_guard, "voice") == at("2026-06-03T09:00:00+00:00")


def test_window_length_for_pacing():
    assert windows.windows_for(WEEKDAYS_9_TO_18).sending.length == 9 * 60
    assert windows.windows_for({}).sending.length == 24 * 60
    assert windows.windows_for({"sendingWindow": {"start": "22:00", "end": "02:00"}}).sending.length == 4 * 60
