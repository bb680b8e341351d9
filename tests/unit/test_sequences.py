"""Sequence rules: validation messages, delay arithmetic, step templates."""
from __future__ import annotations

import datetime

import pytest

from outreach.runtime import errors, sequences, windows

T0 = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.timezone.utc)
THREE_STEPS = [
    {"channel": "telegram"},
    {"channel": "email", "delay": {"days": 2}, "templates": {"email": {"subject": "Re: {{company}}",
                                                                       "body": "Hi {{firstName}}"}}},
    {"channel": "voice", "delay": {"days": 5, "hours": 4, "minutes": 30}, "stopOnReply": False},
]


def test_no_sequence_is_the_one_shot_step():
    assert sequences.steps_of({}) == (sequences.Step("any", datetime.timedelta(0), None, True),)
    assert sequences.steps_of(None) == sequences.ONE_SHOT


def test_a_sequence_parses_channels_delays_templates_and_stop_on_reply():
    steps = sequences.steps_of({"sequence": THREE_STEPS})
    assert [step.channel for step in steps] == ["telegram", "email", "voice"]
    assert steps[1].delay == datetime.timedelta(days=2)
    assert steps[2].delay == datetime.timedelta(days=5, hours=4, minutes=30)
    assert [step.stop_on_reply for step in steps] == [True, True, False]
    assert steps[1].templates["email"]["subject"] == "Re: {{company}}"


@pytest.mark.parametrize("sequence, message", [
    ([{"channel": "fax"}], "settings.sequence[0].channel must be one of any, email, telegram, voice, got 'fax'"),
    ([{}, {"delay": {"days": -1}}], "settings.sequence[1].delay.days must not be negative"),
    ([{}] * 21, "settings.sequence has 21 steps; at most 20 are allowed"),
    ([{"templates": {"telegram": "Hi {{nickname}}"}}],
     "settings.sequence[0].templates.telegram uses an unknown variable {{nickname}} "
     "(known: {{firstName}}, {{lastName}}, {{company}}, {{fullName}})"),
    ([{"delay": {"weeks": 1}}], "settings.sequence[0].delay must be an object with some of days, hours, minutes"),
    ([{"delay": {"hours": "2"}}], "settings.sequence[0].delay.hours must be a number"),
    ([{"stopOnReply": "yes"}], "settings.sequence[0].stopOnReply must be true or false"),
    ([{"delay": {"days": 1e308}}], "settings.sequence[0].delay must be at most 366 days"),  # checked before timedelta
    ([{"delay": {"minutes": 10 ** 12}}], "settings.sequence[0].delay must be at most 366 days"),
    ([{"delay": {"days": float("inf")}}], "settings.sequence[0].delay must be at most 366 days"),
    ([{"delay": {"days": 300, "hours": 24 * 67}}], "settings.sequence[0].delay must be at most 366 days"),
    ([{"channel": "email", "wait": 3}], "settings.sequence[0] has unknown field(s): wait"),
    ([{"templates": {"email": {"subject": "x"}}}],
     "settings.sequence[0].templates.email must be an object with a subject and a body (strings)"),
    ([], "settings.sequence must be a non-empty array of steps"),
    ("email", "settings.sequence must be a non-empty array of steps"),
    (["email"], "settings.sequence[0] must be an object"),
])
def test_invalid_sequences_name_what_is_wrong(sequence, message):
    with pytest.raises(errors.Invalid) as caught:
        sequences.validate_settings({"sequence": sequence})
    assert caught.value.message == message


def test_twenty_steps_are_allowed():
    assert len(sequences.steps_of({"sequence": [{"delay": {"hours": 1}}] * 20})) == 20


def test_delays_count_from_the_previous_step_and_the_first_from_the_start():
    steps = sequences.steps_of({"sequence": THREE_STEPS})
    assert sequences.first_due(T0, T0, steps) is None  # the first step goes at once
    assert sequences.next_due(T0, steps, 1) == T0 + datetime.timedelta(days=2)
    delayed = sequences.steps_of({"sequence": [{"delay": {"hours": 3}}]})
    assert sequences.first_due(T0, T0, delayed) == T0 + datetime.timedelta(hours=3)
    later = T0 + datetime.timedelta(days=1)  # a scheduledAt ahead: the leads begin then
    assert sequences.first_due(T0, later, steps) == later
    assert sequences.is_last(steps, 2) and not sequences.is_last(steps, 1)


def test_a_steps_templates_lie_over_the_campaigns():
    settings = {"templates": {"telegram": "Hey", "email": {"subject": "S", "body": "B"}}}
    step = sequences.steps_of({"sequence": THREE_STEPS})[1]
    merged = sequences.step_settings(settings, step)
    assert merged["templates"]["telegram"] == "Hey" and merged["templates"]["email"]["body"] == "Hi {{firstName}}"
    assert sequences.step_settings(settings, sequences.Step()) is settings


def test_a_stored_invalid_sequence_runs_as_one_step():
    assert sequences.steps_or_one_shot({"sequence": [{"channel": "fax"}]}) == sequences.ONE_SHOT


def test_the_idempotency_key_carries_the_step_after_the_first():
    assert sequences.idempotency_key("c", "l", 0, "email") == "c:l:email"
    assert sequences.idempotency_key("c", "l", 2, "email") == "c:l:2:email"


def test_a_lead_outside_its_windows_waits_for_the_first_one_to_open():
    windows_ = windows.windows_for({"sendingWindow": {"start": "09:00", "end": "17:00"}})  # calls: 09:00-20:00
    evening = datetime.datetime(2026, 1, 5, 18, 30, tzinfo=datetime.timezone.utc)  # Monday, 18:30 UTC
    closed = sequences.closed_channels(windows_, evening, "UTC", ["email", "voice"])
    assert closed == {"email": "Outside the lead's sending window"}
    night = evening.replace(hour=22)
    closed = sequences.closed_channels(windows_, night, "UTC", ["email", "voice"])
    assert sequences.first_opening(windows_, night, "UTC", list(closed)) == (
        "email", datetime.datetime(2026, 1, 6, 9, 0, tzinfo=datetime.timezone.utc))
    assert sequences.first_opening(windows_, night, "Asia/Tokyo", ["voice"]) == (  # 07:00 in Tokyo
        "voice", datetime.datetime(2026, 1, 6, 0, 0, tzinfo=datetime.timezone.utc))
    assert sequences.first_opening(windows_, night, "UTC", []) is None


def test_the_drafter_is_told_the_step_and_what_was_sent_before():
    from outreach.providers import openrouter

    campaign = {"script": "Sell widgets.", "sequence_step": {"number": 2, "of": 3, "before": [
        {"channel": "telegram", "content": "Hi Ann, a quick question about widgets?"}]}}
    prompt = openrouter.build_messages("email", {"first_name": "Ann"}, campaign)[1]["content"]
    assert "This is step 2 of 3 of a sequence: a follow-up, not a first contact." in prompt
    assert "Already sent by telegram: Hi Ann, a quick question about widgets?" in prompt
    first = openrouter.build_messages("email", {"first_name": "Ann"}, {"script": "Sell widgets."})[1]["content"]
    assert "step" not in first


def test_scheduled_at_is_at_most_five_years_ahead_and_a_stored_later_one_is_refused_clearly():
    sequences.check_scheduled_at(T0, T0 + datetime.timedelta(days=365 * 5))
    sequences.check_scheduled_at(T0, None)
    with pytest.raises(errors.Invalid) as caught:
        sequences.check_scheduled_at(T0, datetime.datetime(9999, 12, 31, tzinfo=datetime.timezone.utc))
    assert caught.value.message == "scheduledAt must be at most 5 years ahead"
    delayed = sequences.steps_of({"sequence": [{"delay": {"days": 2}}]})
    with pytest.raises(errors.Invalid) as caught:
        sequences.first_due(T0, datetime.datetime(9999, 12, 31, tzinfo=datetime.timezone.utc), delayed)
    assert "past the year 9999" in caught.value.message
