"""Parsing a CSV of leads: header aliases, a BOM, rows without contact, duplicates inside the file."""
from __future__ import annotations

import csv
import dataclasses
import io

from outreach.runtime import errors
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


@dataclasses.dataclass
class ParsedCsv:
    rows: list[dict]  # rows to insert, each with its 1-based data row number
    total: int  # data rows read
    duplicates: int  # rows that repeat an earlier row of the same file
    errors: list[dict]  # [{row, error}] for rows that cannot be imported


def clean_lead_fields(raw: dict) -> dict:
    """Trim text, turn blanks into None, drop a leading @ from Telegram usernames."""
    cleaned = {}
    for field in LEAD_TEXT_FIELDS:
        value = raw.get(field)
        value = value.strip() if isinstance(value, str) else None
        if value and field == "telegram_username":
            value = value.lstrip("@").strip()
        cleaned[field] = value or None
    return cleaned


def dedupe_keys(lead: dict) -> list[tuple[str, str]]:
    keys = []
    if lead.get("email"):
        keys.append(("email", lead["email"].lower()))
    if lead.get("phone"):
        keys.append(("phone", lead["phone"]))
    if lead.get("telegram_username"):
        keys.append(("telegram", lead["telegram_username"].lower()))
    return keys


def decode_csv(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise errors.Invalid("The file is not UTF-8 text") from None


def parse_leads_csv(data: bytes) -> ParsedCsv:
    reader = csv.reader(io.StringIO(decode_csv(data), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise errors.Invalid("The CSV file is empty") from None
    except csv.Error as exc:
        raise errors.Invalid(f"Failed to parse CSV: {exc}") from None
    columns = [HEADER_ALIASES.get(name.strip().lower()) for name in header]
    if not any(columns):
        raise errors.Invalid(
            "No known columns in the CSV header. Use firstName, lastName, phone, email, telegramUsername, company, timezone"
        )
    parsed = ParsedCsv(rows=[], total=0, duplicates=0, errors=[])
    seen: set[tuple[str, str]] = set()
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            parsed.total += 1
            add_row(parsed, seen, columns, cells)
    except csv.Error as exc:
        raise errors.Invalid(f"Failed to parse CSV at row {parsed.total + 1}: {exc}") from None
    return parsed


def add_row(parsed: ParsedCsv, seen: set, columns: list, cells: list[str]) -> None:
    row_number = parsed.total
    raw = {column: cell for column, cell in zip(columns, cells) if column}
    lead = clean_lead_fields(raw)
    if not has_contact(lead):
        parsed.errors.append({"row": row_number, "error": "No contact information"})
        return
    too_long = too_long_lead_field(lead)
    if too_long:
        parsed.errors.append({"row": row_number,
                              "error": f"{too_long} must be at most {LEAD_TEXT_LIMITS[too_long]} characters"})
        return
    keys = dedupe_keys(lead)
    if any(key in seen for key in keys):
        parsed.duplicates += 1
        return
    seen.update(keys)
    lead["row_number"] = row_number
    parsed.rows.append(lead)
