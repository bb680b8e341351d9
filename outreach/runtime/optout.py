"""Opting out, as pure rules: contact values normalised for the do-not-contact list, signed unsubscribe
tokens, stop words in replies, and the lead statuses a campaign may contact."""
from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import hmac
import re
import uuid

from outreach.runtime import errors, usernames
from outreach.runtime.lead_csv import decode_csv
from outreach.runtime.models import LeadStatus

SUPPRESSION_TYPES = ("email", "phone", "telegram")
SOURCES = ("unsubscribe", "reply", "bounce", "complaint", "manual", "import", "do_not_call")
# The person's own opt-out (CAN-SPAM, GDPR art. 21): no one in the organization may lift it.
PERMANENT_SOURCES = ("unsubscribe", "complaint")
DEFAULT_AUDIENCE = ("new", "contacted")
NEVER_CONTACTED = ("rejected",)  # a lead who said no stays out, whatever a campaign's audience says
AUDIENCE_STATUSES = tuple(status.value for status in LeadStatus if status.value not in NEVER_CONTACTED)
INVALID_TOKEN = "Invalid or altered unsubscribe link"

EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")
TELEGRAM = re.compile(r"[a-z][a-z0-9_]{3,31}")
PHONE = re.compile(r"\+[1-9]\d{7,14}")
PHONE_NOISE = re.compile(r"[\s().\-/]")


# --- the do-not-contact list -------------------------------------------------------------------------

def normalise(kind: str, value) -> str:
    """The stored form of a contact: email lower case, phone E.164, Telegram username lower case without @.
    Raises Invalid naming what is wrong."""
    if kind not in SUPPRESSION_TYPES:
        raise errors.Invalid(f"type must be one of: {', '.join(SUPPRESSION_TYPES)}")
    if not isinstance(value, str) or not value.strip():
        raise errors.Invalid("value must be a non-empty string")
    return {"email": normalise_email, "phone": normalise_phone, "telegram": normalise_username}[kind](value.strip())


def normalise_email(value: str) -> str:
    address = value.lower()
    if len(address) > 320 or not EMAIL.fullmatch(address):
        raise errors.Invalid(f"{value!r} is not an email address")
    return address


def normalise_phone(value: str) -> str:
    """E.164: `+` and 8-15 digits. Spaces, dots, dashes and brackets go; a leading 00 is the `+`; digits
    without a `+` are taken to start with the country code."""
    number = PHONE_NOISE.sub("", value)
    if number.startswith("00"):
        number = "+" + number[2:]
    elif not number.startswith("+"):
        number = "+" + number
    if not PHONE.fullmatch(number):
        raise errors.Invalid(f"{value!r} is not a phone number in international (E.164) form")
    return number


def normalise_username(value: str) -> str:
    """A username as leads keep it (usernames.canonical: `https://t.me/JohnDoe`, `@JohnDoe` -> `johndoe`), checked."""
    name = usernames.canonical(value)
    if not TELEGRAM.fullmatch(name):
        raise errors.Invalid(f"{value!r} is not a Telegram username")
    return name


# A CSV of contacts to suppress: `type,value` columns, or any of `email`, `phone`, `telegram` (or
# `telegramUsername`) columns, one contact per filled cell.
CSV_COLUMNS = {"email": "email", "phone": "phone", "telegram": "telegram", "telegramusername": "telegram",
               "telegram_username": "telegram"}
MAX_CSV_ERRORS = 1000


def parse_suppression_csv(data: bytes) -> tuple[list[tuple[str, str]], int, list[dict]]:
    """(normalised entries, data rows read, [{row, error}]) of a CSV upload."""
    reader = csv.reader(io.StringIO(decode_csv(data)))
    header = [name.strip().lower() for name in next(reader, [])]
    typed = "type" in header and "value" in header
    if not typed and not any(name in CSV_COLUMNS for name in header):
        raise errors.Invalid("The CSV needs type and value columns, or email, phone or telegram columns")
    entries, problems, total = [], [], 0
    for total, cells in enumerate(reader, start=1):
        row = dict(zip(header, (cell.strip() for cell in cells)))
        pairs = [(row.get("type", "").lower(), row.get("value", ""))] if typed else [
            (CSV_COLUMNS[name], value) for name, value in row.items() if name in CSV_COLUMNS and value]
        for kind, value in pairs:
            try:
                entries.append((kind, normalise(kind, value)))
            except errors.Invalid as exc:
                problems.append({"row": total, "error": exc.message})
    return entries, total, problems[:MAX_CSV_ERRORS]


def audience(settings) -> list[str]:
    """The lead statuses a campaign contacts: `settings.audience.statuses`, else new and contacted;
    rejected never."""
    statuses = (settings or {}).get("audience", {}).get("statuses") if isinstance(settings, dict) else None
    if not isinstance(statuses, list) or not statuses:
        statuses = list(DEFAULT_AUDIENCE)
    return [status for status in statuses if isinstance(status, str) and status not in NEVER_CONTACTED]


def validate_audience(settings) -> None:
    """`settings.audience.statuses`, when given: a list of lead statuses a campaign may contact. `rejected` is
    never one; `converted` (a customer) is contacted only by a campaign that names it here. Raises Invalid."""
    audience_setting = settings.get("audience") if isinstance(settings, dict) else None
    if audience_setting is None:
        return
    if not isinstance(audience_setting, dict):
        raise errors.Invalid("settings.audience must be an object")
    statuses = audience_setting.get("statuses")
    if statuses is None:
        return
    if not isinstance(statuses, list) or not all(isinstance(status, str) for status in statuses):
        raise errors.Invalid("settings.audience.statuses must be a list of lead statuses")
    if any(status in NEVER_CONTACTED for status in statuses):
        raise errors.Invalid("settings.audience.statuses cannot include rejected: a rejected lead is never contacted")
    unknown = [status for status in statuses if status not in AUDIENCE_STATUSES]
    if unknown:
        raise errors.Invalid(f"settings.audience.statuses: unknown lead status {unknown[0]!r} "
                             f"(one of: {', '.join(AUDIENCE_STATUSES)})")


# --- unsubscribe links -------------------------------------------------------------------------------

def signing_key(secret_key: str) -> bytes:
    """A key of its own for unsubscribe links, derived from OUTREACH_SECRET_KEY (which also encrypts sessions)."""
    if not secret_key:
        raise errors.NotConfigured("Unsubscribe links need OUTREACH_SECRET_KEY")
    return hashlib.sha256(b"outreach unsubscribe v1\x00" + secret_key.encode()).digest()


def unsubscribe_token(secret_key: str, org_id, address: str) -> str:
    """`<payload>.<mac>`, both base64url: names the org and the address, and cannot be altered unnoticed."""
    payload = f"{uuid.UUID(str(org_id))}:{normalise_email(address)}".encode()
    return f"{b64(payload)}.{b64(mac(secret_key, payload))}"


def read_unsubscribe_token(secret_key: str, token: str) -> tuple[uuid.UUID, str]:
    """(org id, address) of a token signed with this key; Invalid for anything forged, altered or malformed."""
    encoded, _, signature = (token or "").partition(".")
    try:
        payload, given = unb64(encoded), unb64(signature)
    except (binascii.Error, ValueError):
        raise errors.Invalid(INVALID_TOKEN) from None
    if not hmac.compare_digest(given, mac(secret_key, payload)):
        raise errors.Invalid(INVALID_TOKEN)
    org, _, address = payload.decode().partition(":")
    return uuid.UUID(org), address


def mac(secret_key: str, payload: bytes) -> bytes:
    return hmac.new(signing_key(secret_key), payload, hashlib.sha256).digest()[:20]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def list_unsubscribe_headers(public_url: str, token: str, mailto: str | None) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe (what Gmail and Yahoo require of bulk senders): an https link the
    mailbox POSTs to, and a mailto for clients that only know RFC 2369."""
    targets = [f"<{public_url.rstrip('/')}/u/{token}>"]
    if mailto:
        targets.append(f"<mailto:{mailto}?subject=unsubscribe>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


# --- stop words in replies ---------------------------------------------------------------------------

# Phrases that mean "stop" wherever they appear in a reply, in the languages the product serves.
STOP_PHRASES = ("unsubscribe", "opt out", "opt-out", "remove me", "do not contact", "don't contact", "stop messaging",
                "отписаться", "отпишите", "не пишите", "не пишіть", "відписатися", "відпишіть", "не звоните",
                "не телефонуйте")
# Words that mean "stop" only as the reply itself or its opening ("Stop.", "стоп, спасибо"): "don't stop" is not one.
STOP_WORDS = ("stop", "стоп", "хватит", "досить")
SHORT_REPLY_WORDS = 4
REPLY_PREFIXES = ("re", "fw", "fwd", "aw", "sv", "ответ", "відповідь")


def is_stop_request(text: str | None) -> bool:
    """Does this reply ask us to stop writing?"""
    words = re.findall(r"[\w'’-]+", (text or "").lower())
    while words and words[0] in REPLY_PREFIXES:  # "Re: stop", "Fwd: unsubscribe"
        words = words[1:]
    if not words:
        return False
    joined = " ".join(words)
    if any(phrase in joined for phrase in STOP_PHRASES):
        return True
    return words[0] in STOP_WORDS and len(words) <= SHORT_REPLY_WORDS
