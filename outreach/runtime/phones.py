"""Phone numbers in E.164 (`+`, country code, subscriber number; digits only): what a lead keeps and Twilio dials.

Pure: `phonenumbers` (Google's libphonenumber metadata) decides whether a number is possible for its country.
"""
from __future__ import annotations

import re

import phonenumbers

from outreach.runtime import errors

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# What people type around the digits: spaces, dashes, dots, brackets. Anything else (letters, sip:, control
# characters, an extension) is refused rather than guessed at.
TYPED = re.compile(r"(\+|00)?[0-9 ().\-]+")
INVALID_PHONE = "phone must be an international number with its country code, like +14155551234"


def normalise_phone(text: str) -> str:
    """'+1 (415) 555-0101' or '0044 20 7123 4567' -> E.164; raises errors.Invalid(INVALID_PHONE) otherwise."""
    candidate = text.strip()
    if not TYPED.fullmatch(candidate):
        raise errors.Invalid(INVALID_PHONE)
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    if not candidate.startswith("+"):
        raise errors.Invalid(INVALID_PHONE)  # without a country code the number is ambiguous
    try:
        parsed = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        raise errors.Invalid(INVALID_PHONE) from None
    if not phonenumbers.is_possible_number(parsed):
        raise errors.Invalid(INVALID_PHONE)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_e164(value) -> bool:
    """Whether `value` is already a dialable E.164 number (what the voice dispatcher insists on)."""
    if not isinstance(value, str) or not E164.fullmatch(value):
        return False
    try:
        return normalise_phone(value) == value
    except errors.Invalid:
        return False
