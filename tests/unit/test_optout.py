"""Opt-out rules: normalised contacts, signed unsubscribe tokens, stop words, audiences, sender checks."""
from __future__ import annotations

import uuid

import pytest

from outreach.runtime import errors, optout, replies, usernames

ORG = uuid.UUID("6f1c0e6a-3a51-4c47-9d55-0d6f4b8b2a10")


@pytest.mark.parametrize("kind, value, stored", [
    ("email", "  Ann.Lee@Example.COM ", "ann.lee@example.com"),
    ("phone", "+1 (555) 010-0199", "+15550100199"),
    ("phone", "00380 44 123 4567", "+380441234567"),
    ("phone", "380441234567", "+380441234567"),
    ("telegram", "@Ann_Lee", "ann_lee"),
    ("telegram", "https://t.me/ann_lee", "ann_lee"),
    ("telegram", "t.me/JohnDoe", "johndoe"),
    ("telegram", "http://www.telegram.me/JohnDoe/?start=1", "johndoe"),
])
def test_contacts_are_normalised(kind, value, stored):
    assert optout.normalise(kind, value) == stored


@pytest.mark.parametrize("kind, value, message", [
    ("email", "not-an-address", "is not an email address"),
    ("phone", "+12", "E.164"),
    ("phone", "call me", "E.164"),
    ("telegram", "@a b", "is not a Telegram username"),
    ("fax", "123", "type must be one of: email, phone, telegram"),
    ("email", "   ", "value must be a non-empty string"),
])
def test_invalid_contacts_are_refused_with_the_reason(kind, value, message):
    with pytest.raises(errors.Invalid, match=message):
        optout.normalise(kind, value)


def test_a_token_names_the_org_and_the_address():
    token = optout.unsubscribe_token("secret", ORG, "Ann@Example.com")
    assert optout.read_unsubscribe_token("secret", token) == (ORG, "ann@example.com")


def test_a_token_under_another_key_or_altered_is_refused():
    token = optout.unsubscribe_token("secret", ORG, "ann@example.com")
    payload, mac = token.split(".")
    other_address = optout.b64(f"{ORG}:bob@example.com".encode())
    forged = [optout.unsubscribe_token("another secret", ORG, "ann@example.com"), f"{other_address}.{mac}",
              f"{payload}.{mac[:-2]}AA", payload, "", "a.b.c", f"{payload}.{mac}!", "%%%.***"]
    for candidate in forged:
        with pytest.raises(errors.Invalid, match="Invalid or altered unsubscribe link"):
            optout.read_unsubscribe_token("secret", candidate)


def test_list_unsubscribe_headers_follow_rfc_8058():
    headers = optout.list_unsubscribe_headers("https://app.example.com/", "tok", "reply@example.com")
    assert headers == {"List-Unsubscribe": "<https://app.example.com/u/tok>, <mailto:reply@example.com?subject=unsubscribe>",
                       "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


@pytest.mark.parametrize("text", ["STOP", "Stop.", "стоп", "Unsubscribe me please", "Пожалуйста, не пишите мне",
                                  "Хочу відписатися", "отписаться", "stop, thanks", "Please remove me from your list",
                                  "Re: STOP", "RE: Re: unsubscribe"])
def test_stop_requests(text):
    assert optout.is_stop_request(text)


@pytest.mark.parametrize("text", ["Sounds good, call me tomorrow", "Don't stop sending me deals like this one",
                                  "", None, "What does the bus stop near your office look like?"])
def test_not_stop_requests(text):
    assert not optout.is_stop_request(text)


def test_audience_defaults_to_new_and_contacted_and_never_includes_rejected():
    assert optout.audience({}) == ["new", "contacted"]
    assert optout.audience({"audience": {"statuses": ["qualified", "rejected"]}}) == ["qualified"]
    assert optout.audience({"audience": {"statuses": []}}) == ["new", "contacted"]


def test_suppression_csv_with_type_and_value_columns():
    data = "\ufefftype,value\nemail,Ann@Example.com\nphone,+1 555 010 0199\nfax,1\ntelegram,@bob_b\n".encode()
    entries, total, problems = optout.parse_suppression_csv(data)
    assert entries == [("email", "ann@example.com"), ("phone", "+15550100199"), ("telegram", "bob_b")]
    assert total == 4 and problems == [{"row": 3, "error": "type must be one of: email, phone, telegram"}]


def test_suppression_csv_with_contact_columns():
    data = b"Email,Phone,telegramUsername\nann@example.com,,@ann_a\n,+380441234567,\nbad,,\n"
    entries, total, problems = optout.parse_suppression_csv(data)
    assert entries == [("email", "ann@example.com"), ("telegram", "ann_a"), ("phone", "+380441234567")]
    assert total == 3 and problems == [{"row": 3, "error": "'bad' is not an email address"}]


def test_suppression_csv_without_known_columns_is_refused():
    with pytest.raises(errors.Invalid, match="type and value columns"):
        optout.parse_suppression_csv(b"name\nAnn\n")


@pytest.mark.parametrize("data, verified", [
    ({}, True),
    ({"spf": "pass", "dkim": "fail"}, True),
    ({"spf": "fail", "dkim": "fail"}, False),
    ({"authentication": {"dmarc": "fail", "spf": "pass"}}, False),
    ({"headers": [{"name": "Authentication-Results", "value": "mx.example; spf=pass; dkim=pass; dmarc=pass"}]}, True),
    ({"headers": {"authentication-results": "mx.example; spf=softfail smtp.mailfrom=x; dmarc=fail"}}, False),
])
def test_sender_verification(data, verified):
    assert replies.sender_verified(replies.auth_results(data)) is verified


def test_qualifying_score():
    assert replies.qualifies(0.7, {}) and not replies.qualifies(0.69, {})
    assert replies.qualifies(85, {"qualifyScore": 0.8}) and not replies.qualifies(75, {"qualifyScore": 0.8})
    assert not replies.qualifies(None, {}) and replies.qualify_threshold({"qualifyScore": 7}) == 0.7


@pytest.mark.parametrize("typed", ["https://t.me/JohnDoe", "t.me/JohnDoe", "@JohnDoe", " JohnDoe ", "T.ME/johndoe/"])
def test_a_username_has_one_form_however_it_is_typed(typed):
    assert usernames.canonical(typed) == "johndoe"


@pytest.mark.parametrize("settings", [None, {}, {"audience": {}}, {"audience": {"statuses": []}},
                                      {"audience": {"statuses": ["new", "qualified", "converted"]}}])
def test_an_audience_of_known_statuses_is_accepted(settings):
    optout.validate_audience(settings)


@pytest.mark.parametrize("settings, message", [
    ({"audience": "all"}, "settings.audience must be an object"),
    ({"audience": {"statuses": "new"}}, "settings.audience.statuses must be a list of lead statuses"),
    ({"audience": {"statuses": [1]}}, "settings.audience.statuses must be a list of lead statuses"),
    ({"audience": {"statuses": ["new", "rejected"]}},
     "settings.audience.statuses cannot include rejected: a rejected lead is never contacted"),
    ({"audience": {"statuses": ["customers"]}},
     "settings.audience.statuses: unknown lead status 'customers' (one of: new, contacted, qualified, converted)"),
])
def test_a_bad_audience_is_refused_naming_the_reason(settings, message):
    with pytest.raises(errors.Invalid) as refused:
        optout.validate_audience(settings)
    assert refused.value.message == message


def test_a_replys_thread_ids_come_from_in_reply_to_and_references():
    data = {"headers": [{"name": "In-Reply-To", "value": "<re_1@resend.dev>"},
                        {"name": "References", "value": "<a@b.c> <re_1@resend.dev>"}]}
    assert replies.thread_ids(data) == ["re_1@resend.dev", "re_1", "a@b.c", "a"]
    assert replies.thread_ids({}) == []
