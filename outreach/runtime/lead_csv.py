"""Reading leads from a CSV a chunk at a time: header aliases, a BOM, rows without contact, fields that cannot be kept.

Memory is bounded by the chunk, whatever the file's length: duplicates inside the file are found by the database
(storage/lead_import.py), not here.
"""
from __future__ import annotations

import csv
import typing
import unicodedata

from outreach.runtime import errors, phones, usernames
from outreach.runtime.policy import LEAD_TEXT_FIELDS, LEAD_TEXT_LIMITS, has_contact, too_long_lead_field

HEADER_ALIASES = {
    "firstname": "first_name",
    "first_name": "first_name",
    "first name": "first_name",
    "lastname": "last_name",
    "last_name": "last_name",
    "last name": "last_name",
    "phone": "phone",
    "email": "email",
    "telegramusername": "telegram_username",
    "telegram_username": "telegram_username",
    "telegram": "telegram_username",
    "company": "company",
    "timezone": "timezone",
}
NOT_UTF8 = "The file is not UTF-8 text"
MAX_KEPT_ERRORS = 1000  # row errors kept for the answer; the rest are counted
# Line breaks that are not control characters (Cc) but end a header line all the same.
LINE_SEPARATORS = {"\u2028", "\u2029"}


def clean_lead_fields(raw: dict) -> dict:
    """Trim text, turn blanks into None, keep Telegram usernames in their one form (usernames.canonical: no @,
    no t.me link, lower case) so the do-not-contact list and replies match them."""
    cleaned = {}
    for field in LEAD_TEXT_FIELDS:
        value = raw.get(field)
        value = value.strip() if isinstance(value, str) else None
        if value and field == "telegram_username":
            value = usernames.canonical(value)
        cleaned[field] = value or None
    return cleaned


def has_control_character(text: str | None) -> bool:
    """A character that could end or forge a header line (CR, LF, NUL, ...), or one that is invisible control."""
    return bool(text) and any(unicodedata.category(char) == "Cc" or char in LINE_SEPARATORS for char in text)


def wire_name(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def checked_lead(lead: dict) -> dict:
    """The lead's given fields as kept: no control characters, the phone in E.164. Raises errors.Invalid naming
    the first field that cannot be kept (the message a row error or a 400 carries)."""
    for field in LEAD_TEXT_FIELDS:
        if has_control_character(lead.get(field)):
            raise errors.Invalid(f"{wire_name(field)} must not contain control characters")
    if lead.get("phone"):
        return {**lead, "phone": phones.normalise_phone(lead["phone"])}
    return lead


def decode_csv(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise errors.Invalid(NOT_UTF8) from None


class LeadCsvReader:
    """Leads from a CSV text stream (open it with encoding="utf-8-sig", newline=""), a chunk at a time.

    `total` counts the data rows read so far (blank lines are not rows), `errors` keeps the first row errors
    ({row, error}) and `error_count` counts them all.
    """

    def __init__(self, stream: typing.TextIO):
        self.rows = csv.reader(stream)
        self.columns = read_columns(self.rows)
        self.total = 0
        self.errors: list[dict] = []
        self.error_count = 0

    def next_chunk(self, size: int) -> list[dict]:
        """Up to `size` rows that can be imported, each with its 1-based `row_number`; [] at the end."""
        chunk: list[dict] = []
        try:
            for cells in self.rows:
                if any(cell.strip() for cell in cells):
                    self.total += 1
                    self.add_row(chunk, cells)
                    if len(chunk) >= size:
                        break
        except csv.Error as exc:
            raise errors.Invalid(f"Failed to parse CSV at row {self.total + 1}: {exc}") from None
        except UnicodeDecodeError:
            raise errors.Invalid(NOT_UTF8) from None
        return chunk

    def add_row(self, chunk: list[dict], cells: list[str]) -> None:
        lead = clean_lead_fields({column: cell for column, cell in zip(self.columns, cells) if column})
        try:
            lead = checked_row(lead)
        except errors.Invalid as exc:
            self.error_count += 1
            if len(self.errors) < MAX_KEPT_ERRORS:
                self.errors.append({"row": self.total, "error": exc.message})
            return
        lead["row_number"] = self.total
        chunk.append(lead)


def checked_row(lead: dict) -> dict:
    if not has_contact(lead):
        raise errors.Invalid("No contact information")
    too_long = too_long_lead_field(lead)
    if too_long:
        raise errors.Invalid(f"{too_long} must be at most {LEAD_TEXT_LIMITS[too_long]} characters")
    return checked_lead(lead)


def read_columns(rows) -> list[str | None]:
    try:
        header = next(rows)
    except StopIteration:
        raise errors.Invalid("The CSV file is empty") from None
    except csv.Error as exc:
        raise errors.Invalid(f"Failed to parse CSV: {exc}") from None
    except UnicodeDecodeError:
        raise errors.Invalid(NOT_UTF8) from None
    columns = [HEADER_ALIASES.get(name.strip().lower()) for name in header]
    if not any(columns):
        raise errors.Invalid(
            "No known columns in the CSV header. Use firstName, lastName, phone, email, telegramUsername, company, timezone"
        )
    return columns
