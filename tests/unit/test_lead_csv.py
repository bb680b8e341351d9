"""CSV reading rules for the lead import: a chunk at a time, row errors with their numbers."""
from __future__ import annotations

import io

import pytest

from outreach.runtime import errors
from outreach.runtime.lead_csv import LeadCsvReader, checked_lead, clean_lead_fields, has_control_character


def reader_of(data: bytes) -> LeadCsvReader:
    return LeadCsvReader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""))


def all_rows(reader: LeadCsvReader, size: int = 1000) -> list[dict]:
    rows = []
    while chunk := reader.next_chunk(size):
        rows.extend(chunk)
    return rows


def test_headers_are_case_insensitive_with_aliases_and_bom():
    reader = reader_of("\ufeffFIRSTNAME, last_name ,E-Mail,Telegram_Username\nA,B,c@d.e,@tg\n".encode())
    [row] = all_rows(reader)
    assert reader.total == 1
    assert (row["first_name"], row["last_name"], row["telegram_username"]) == ("A", "B", "tg")
    assert row["email"] is None  # E-Mail is not a known alias


def test_rows_come_a_chunk_at_a_time_with_their_numbers():
    data = b"email\n" + b"".join(f"lead{index}@x.io\n".encode() for index in range(7))
    reader = reader_of(data)
    assert [len(reader.next_chunk(3)) for _ in range(4)] == [3, 3, 1, 0]
    assert reader.total == 7
    reader = reader_of(data)
    assert [row["row_number"] for row in all_rows(reader, 2)] == list(range(1, 8))


def test_rows_without_contact_are_reported_with_their_number():
    reader = reader_of(b"company,email\nAcme,\n,\nBeta,b@x.io\n")
    rows = all_rows(reader)
    assert reader.total == 2  # the blank line is not a row
    assert reader.errors == [{"row": 1, "error": "No contact information"}] and reader.error_count == 1
    assert len(rows) == 1


def test_phones_become_e164_and_bad_ones_are_row_errors():
    reader = reader_of(b"firstName,phone\nA,+1 (415) 555-0101\nB,4155550101\nC,sip:x@evil.example\nD,0044 20 7123 4567\n")
    rows = all_rows(reader)
    assert [row["phone"] for row in rows] == ["+14155550101", "+442071234567"]
    message = "phone must be an international number with its country code, like +14155551234"
    assert reader.errors == [{"row": 2, "error": message}, {"row": 3, "error": message}]


def test_control_characters_are_row_errors():
    reader = reader_of('firstName,company\n"Ivan\r\nBcc: x",Acme\nBell\x07,Acme\nOk,Acme\n"Line\u2028Sep",A\n'.encode())
    assert [row["first_name"] for row in all_rows(reader)] == ["Ok"]
    assert reader.errors == [{"row": 1, "error": "firstName must not contain control characters"},
                             {"row": 2, "error": "firstName must not contain control characters"},
                             {"row": 4, "error": "firstName must not contain control characters"}]


def test_only_the_first_thousand_errors_are_kept_and_all_are_counted():
    reader = reader_of(b"company,email\n" + b"Acme,\n" * 1500)
    assert all_rows(reader) == [] and len(reader.errors) == 1000 and reader.error_count == 1500


def test_short_rows_and_quoted_commas():
    [row] = all_rows(reader_of(b'firstName,company,email\n"Doe, J",\n'))
    assert row["first_name"] == "Doe, J" and row["email"] is None


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"\xff\xfe", "UTF-8"),
    (b"a,b\n1,2\n", "No known columns"),
])
def test_unusable_files(data, message):
    with pytest.raises(errors.Invalid, match=message):
        all_rows(reader_of(data))


def test_a_file_that_stops_being_utf8_is_refused():
    with pytest.raises(errors.Invalid, match="UTF-8"):
        all_rows(reader_of(b"email\n" + b"a@x.io\n" * 10_000 + b"\xff\xfe\n"))


def test_clean_lead_fields():
    assert clean_lead_fields({"email": "  ", "telegram_username": " @@x ", "company": None}) == {
        "first_name": None, "last_name": None, "phone": None, "email": None, "telegram_username": "x",
        "company": None, "timezone": None,
    }


def test_checked_lead_checks_only_the_fields_given():
    assert checked_lead({"phone": "+44 20 7123 4567"}) == {"phone": "+442071234567"}
    with pytest.raises(errors.Invalid, match="company must not contain control characters"):
        checked_lead({"company": "Tab\tCo"})
    with pytest.raises(errors.Invalid, match="lastName must not contain control characters"):
        checked_lead({"last_name": "x\x00"})
    assert has_control_character("a\u0085b") and not has_control_character("Zoë O'Brien-Łukasz")
