"""Sending and calling windows are validated on campaign create and update, over HTTP and PostgreSQL."""
from __future__ import annotations

import pytest

BASE = "/api/dashboard/campaigns"
GOOD = {"timezone": "Europe/Kyiv", "sendingWindow": {"days": ["mon", "fri"], "start": "09:00", "end": "18:00"},
        "callingWindow": {"start": "20:00", "end": "09:00"}}


async def test_valid_windows_are_stored_as_given(api, pool):
    reply = await api.post(BASE, json={"name": "Windows", "settings": GOOD})
    assert reply.status == 201 and reply.body["settings"] == GOOD
    assert await pool.fetchval("SELECT settings FROM campaigns") == GOOD


@pytest.mark.parametrize("bad, message", [
    ({"timezone": "Mars/Olympus"}, "settings.timezone: unknown time zone 'Mars/Olympus'"),
    ({"sendingWindow": {"days": []}}, "settings.sendingWindow.days must be a non-empty list"),
    ({"sendingWindow": {"start": "9am", "end": "18:00"}}, 'settings.sendingWindow.start must be a time like "09:00"'),
    ({"callingWindow": {"start": "22:00", "end": "06:00"}}, "settings.callingWindow must overlap 08:00-21:00"),
])
async def test_invalid_windows_are_a_400_naming_the_setting_and_write_nothing(api, pool, bad, message):
    created = await api.post(BASE, json={"name": "Bad", "settings": bad})
    assert created.status == 400 and set(created.body) == {"error"} and created.body["error"].startswith(message)
    assert await pool.fetchval("SELECT count(*) FROM campaigns") == 0
    campaign = (await api.post(BASE, json={"name": "Good", "settings": GOOD})).body["id"]
    for method in ("PATCH", "PUT"):
        updated = await api.call(method, f"{BASE}/{campaign}", json={"settings": bad})
        assert updated.status == 400 and updated.body["error"].startswith(message)
    assert await pool.fetchval("SELECT settings FROM campaigns") == GOOD
