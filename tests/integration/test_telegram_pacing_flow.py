"""A Telegram account's day spread over the campaign's sending window, end to end: the real campaign runner and
account actor on a local Ray, PostgreSQL and Redis, driven by the shared test clock (no real waiting)."""
from __future__ import annotations

import dataclasses
import datetime

import pytest

from tests.integration.test_scheduler import (  # noqa: F401 (fixtures)
    BASE, MONDAY_NOON, Timeline, api, clock, make_campaign, process, scheduler_of)

HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def clock_settings(ray_settings):
    """The scheduler tests' processes, with the quota spread that sandbox settings leave off (pacing 0 s)."""
    return dataclasses.replace(ray_settings, shared_test_clock=True, telegram_spread_override=True)


async def test_an_accounts_day_is_spread_over_the_window_and_the_rest_goes_when_it_reopens(api, pool, clock, process):
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (phone, session, status, assigned_org_id, max_daily_messages) "
        "VALUES ('+380500000002', 'sandbox', 'active', $1, 4) RETURNING id", api.org_id)
    leads = [{"firstName": f"P{index}", "telegramUsername": f"paced_{index}"} for index in range(4)]
    campaign_id = await make_campaign(api, pool, leads, channels=("telegram",),
                                      settings={"sendingWindow": {"start": "09:00", "end": "17:00"}})
    first = await api.post(f"{BASE}/{campaign_id}/execute")
    assert first.status == 200 and first.body["progress"]["status"] == "active", first.body
    timeline = Timeline(pool, clock, scheduler_of(pool, process, clock))
    await timeline.run_until(MONDAY_NOON + 24 * HOUR)

    # 8 hours for 4 messages: one every 2 hours from noon; 18:00 is after the window, so Tuesday 09:00
    assert sorted(timeline.fired.values()) == [MONDAY_NOON, MONDAY_NOON + 2 * HOUR, MONDAY_NOON + 4 * HOUR,
                                               MONDAY_NOON + 21 * HOUR]
    attempts = await pool.fetch("SELECT lead_id, count(*) AS n FROM attempts WHERE campaign_id = $1 GROUP BY 1",
                                campaign_id)
    assert len(attempts) == 4 and {row["n"] for row in attempts} == {1}
    state = await pool.fetchrow("SELECT daily_message_count, daily_count_day, next_send_at FROM telegram_accounts "
                                "WHERE id = $1", account)
    assert (state["daily_message_count"], state["daily_count_day"]) == (1, datetime.date(2026, 1, 6))
    assert state["next_send_at"] == MONDAY_NOON + 23 * HOUR
    assert (await api.get(f"{BASE}/{campaign_id}")).body["status"] == "completed"
