"""Channel choice, calling windows and templates: pure rules."""
from __future__ import annotations

import datetime

from outreach.runtime import policy, templates

LEAD = {"first_name": "Olga", "email": "o@example.com", "telegram_username": "olga", "phone": "+380501234567",
        "company": "Acme"}
ALL = ["telegram", "voice", "email"]


def choose(lead=LEAD, order=ALL, attempted=None, blocked=None, in_window=True):
    return policy.choose_channel(lead, order, attempted or {}, blocked or {}, in_window)


def test_order_is_priority_filtered_by_enabled_channels():
    assert policy.ordered_channels(["email", "voice"], ["telegram", "voice", "email", "voice"]) == ["voice", "email"]
    assert policy.ordered_channels(["email"], []) == []


def test_first_reachable_channel_in_priority():
    assert choose().channel == "telegram"
    assert choose(lead={**LEAD, "telegram_username": None}).channel == "voice"


def test_failed_channels_fall_through_to_the_next():
    assert choose(attempted={"telegram": "privacy"}).channel == "voice"
    result = choose(attempted={"telegram": "privacy", "voice": "No answer", "email": "Email bounced"})
    assert (result.channel, result.outcome, result.reason) == (None, "failed", "Email bounced")


def test_no_contact_for_any_enabled_channel_is_skipped():
    result = choose(lead={"first_name": "X", "company": "Y"})
    assert result.outcome == "skipped" and result.reason == policy.NO_CONTACT


def test_blocked_channel_defers_when_nothing_else_works():
    assert choose(blocked={"telegram": "limit"}).channel == "voice"
    result = choose(order=["email"], blocked={"email": "Email limit reached (500/500)"})
    assert result.outcome == "deferred" and result.reason == "Email limit reached (500/500)"


def test_voice_outside_the_window_defers_or_falls_through():
    assert choose(order=["voice", "email"], in_window=False).channel == "email"
    result = choose(order=["voice"], in_window=False)
    assert result.outcome == "deferred" and "calling window" in result.reason


def test_calling_window_in_the_leads_timezone():
    noon_utc = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)

    def callable_now(settings: dict, zone: str | None, now=noon_utc) -> bool:
        return policy.calling_window(settings).next_send_time(now, zone, "voice") == now

    assert callable_now({}, "Europe/Kyiv")  # 15:00 there
    assert not callable_now({}, "Pacific/Auckland")  # midnight there
    assert callable_now({}, "Not/AZone")  # unknown zone: UTC
    evening = {"callingWindow": {"start": "18:00", "end": "02:00"}}
    assert not callable_now(evening, None)
    assert callable_now(evening, None, noon_utc.replace(hour=20))
    assert not callable_now(evening, None, noon_utc.replace(hour=23))  # never a call after 21:00
    assert policy.calling_window({"callingWindow": {"start": "nine"}}) == policy.calling_window({})
    assert not callable_now({"timezone": "Asia/Tokyo"}, None)  # the campaign's zone for leads without one: 21:00


def test_templates_are_rendered_for_the_lead():
    assert templates.render("Hi {{firstName}} from {{ company }}!", LEAD) == "Hi Olga from Acme!"
    assert templates.render("Hi {{firstName}} {{lastName}}", {}) == "Hi there"
    settings = {"templates": {"email": {"subject": "S", "body": " "}, "telegram": "T"}}
    assert templates.email_template(settings) is None and templates.telegram_template(settings) == "T"
    assert templates.email_template({"templates": "nope"}) is None
