"""Telegram account pacing: warm-up ramp, the daily quota spread over the window, whether a send may go."""
from __future__ import annotations

import datetime

import pytest

from outreach.runtime import pacing

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
DAY = datetime.date(2026, 6, 3)
RAMP = pacing.Warmup(start=5, step=5)


@pytest.mark.parametrize("days_active, configured, expected", [
    (0, 40, 5), (1, 40, 10), (6, 40, 35), (7, 40, 40), (30, 40, 40), (0, 3, 3), (2, 12, 12), (-1, 40, 5),
])
def test_warmup_ramps_from_start_by_step_up_to_the_configured_limit(days_active, configured, expected):
    started = DAY - datetime.timedelta(days=days_active)
    assert pacing.warmup_limit(configured, started, DAY, RAMP) == expected


def test_no_warmup_start_means_the_configured_limit_and_the_ramp_is_configurable():
    assert pacing.warmup_limit(40, None, DAY, RAMP) == 40
    assert pacing.warmup_limit(100, DAY - datetime.timedelta(days=2), DAY, pacing.Warmup(start=10, step=20)) == 50
    assert pacing.warmup_limit(100, DAY - datetime.timedelta(days=9), DAY, pacing.Warmup(start=2, step=0)) == 2


def test_the_daily_quota_is_spread_over_the_window():
    # 9 hours for 50 messages: one every 648 s on average, jittered by the pacing's width (60 s) around it
    gaps = [pacing.send_gap(9 * 60, 50, (30, 90), draw / 10) for draw in range(10)]
    assert min(gaps) == pytest.approx(618) and max(gaps) == pytest.approx(672)
    assert sum(pacing.send_gap(9 * 60, 50, (30, 90), draw) for draw in (0.25, 0.75)) / 2 == pytest.approx(648)
    # the whole quota fits the window: 50 mean gaps are the window's length
    assert 50 * pacing.send_gap(9 * 60, 50, (30, 90), 0.5) == pytest.approx(9 * 3600)


def test_a_short_spread_leaves_the_pacing_as_it_was():
    # 24 h over 10,000 messages is 8.6 s: below the pacing, so 30-90 s jittered as before
    assert [pacing.send_gap(24 * 60, 10_000, (30, 90), draw) for draw in (0, 0.5, 0.999)] == \
        [30, 60, pytest.approx(89.94)]
    assert pacing.send_gap(0, 10, (0, 0), 0.7) == 0  # no spread, no pacing: sandbox
    assert pacing.send_gap(60, 0, (0, 0), 0.5) == 3600  # a zero limit counts as one


@pytest.mark.parametrize("window_minutes, limit", [(60, 1), (600, 7), (1440, 500), (0, 5)])
def test_the_gap_stays_within_the_pacing_or_around_the_spread(window_minutes, limit):
    for draw in (0, 0.3, 0.999):
        gap = pacing.send_gap(window_minutes, limit, (30, 90), draw)
        assert gap >= 30 and abs(gap - max(window_minutes * 60 / limit, 60)) <= 30


def account(**values) -> dict:
    return {"status": "active", "daily_message_count": 0, "daily_count_day": None, "day_timezone": "UTC",
            "max_daily_messages": 20, "warmup_started_on": None, "flood_wait_until": None, "next_send_at": None,
            **values}


def test_a_slot_is_given_within_the_limit():
    slot = pacing.check_slot(account(daily_message_count=19, daily_count_day=DAY), NOW, RAMP)
    assert slot == pacing.Slot(daily_limit=20)


def test_the_daily_limit_refuses_until_the_accounts_next_day():
    slot = pacing.check_slot(account(daily_message_count=20, daily_count_day=DAY), NOW, RAMP)
    assert slot.refusal == "Telegram account daily limit reached"
    assert slot.retry_at == datetime.datetime(2026, 6, 4, tzinfo=UTC)
    in_kyiv = pacing.check_slot(account(daily_message_count=20, daily_count_day=DAY, day_timezone="Europe/Kyiv"),
                                NOW, RAMP)
    assert in_kyiv.retry_at == datetime.datetime(2026, 6, 3, 21, 0, tzinfo=UTC)  # midnight in Kyiv (UTC+3)
    yesterday = pacing.check_slot(account(daily_message_count=20, daily_count_day=DAY - datetime.timedelta(days=1)),
                                  NOW, RAMP)
    assert yesterday.refusal is None


def test_a_warming_account_is_held_to_its_ramp():
    warming = account(warmup_started_on=DAY - datetime.timedelta(days=1), daily_message_count=10, daily_count_day=DAY)
    slot = pacing.check_slot(warming, NOW, RAMP)
    assert (slot.refusal, slot.daily_limit) == ("Telegram account daily limit reached", 10)
    assert pacing.shown_status(warming, NOW, RAMP) == "warming_up"
    assert pacing.effective_limit(warming, NOW, RAMP) == 10
    warm = account(warmup_started_on=DAY - datetime.timedelta(days=3))
    assert pacing.shown_status(warm, NOW, RAMP) == "active" and pacing.effective_limit(warm, NOW, RAMP) == 20


def test_other_statuses_show_as_stored_with_no_limit_today():
    for status in ("banned", "cooldown", "warming_up"):
        parked = account(status=status)
        assert pacing.shown_status(parked, NOW, RAMP) == status and pacing.effective_limit(parked, NOW, RAMP) == 0
        assert pacing.check_slot(parked, NOW, RAMP) == pacing.Slot(f"Telegram account is {status}")


def test_flood_wait_and_pacing_refuse_until_their_time():
    until = NOW + datetime.timedelta(minutes=7)
    flood = pacing.check_slot(account(flood_wait_until=until, next_send_at=NOW + datetime.timedelta(hours=1)),
                              NOW, RAMP)
    assert (flood.refusal, flood.retry_at) == ("Telegram account is waiting out a flood limit", until)
    paced = pacing.check_slot(account(next_send_at=until), NOW, RAMP)
    assert (paced.refusal, paced.retry_at) == ("Telegram account is pacing its sends", until)
    assert pacing.check_slot(account(next_send_at=NOW, flood_wait_until=NOW), NOW, RAMP).refusal is None


def test_the_accounts_day_is_in_its_own_time_zone():
    late = datetime.datetime(2026, 6, 3, 23, 30, tzinfo=UTC)
    assert pacing.account_today("Asia/Tokyo", late) == datetime.date(2026, 6, 4)
    assert pacing.account_today("Mars/Olympus", late) == datetime.date(2026, 6, 3)
    assert pacing.sent_today(account(daily_message_count=4, daily_count_day=DAY, day_timezone="Asia/Tokyo"), late) == 0
    # New York's day after the clocks fall back is 25 hours long: the next day starts at 05:00 UTC
    fall_back = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert pacing.next_account_day("America/New_York", fall_back) == datetime.datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
