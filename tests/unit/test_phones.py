"""E.164: what a lead's phone is normalised to, and the only destination the voice dispatcher calls."""
from __future__ import annotations

import pytest

from outreach.runtime import errors, phones


@pytest.mark.parametrize("typed, e164", [
    ("+14155550101", "+14155550101"),
    (" +1 (415) 555-0101 ", "+14155550101"),
    ("+44 20 7123 4567", "+442071234567"),
    ("0044 20 7123 4567", "+442071234567"),
    ("+380.50.123.45.67", "+380501234567"),
])
def test_typed_numbers_become_e164(typed, e164):
    assert phones.normalise_phone(typed) == e164


@pytest.mark.parametrize("typed", [
    "4155550101",  # no country code: ambiguous
    "+1", "+", "", "+0155550101", "+1415555010199999",
    "sip:agent@evil.example", "client:alice", "+1-800-FLOWERS", "+14155550101 ext 5", "+1415\n5550101",
    "+99912345678",  # no such country code
])
def test_anything_else_is_refused(typed):
    with pytest.raises(errors.Invalid, match="phone must be an international number with its country code"):
        phones.normalise_phone(typed)


def test_is_e164_only_for_numbers_already_normalised():
    assert phones.is_e164("+14155550101")
    for value in ("+1 415 555 0101", "sip:+14155550101@x", "client:alice", None, 14155550101, "+1"):
        assert not phones.is_e164(value), value
