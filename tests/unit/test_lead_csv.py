"""CSV parsing rules for the lead import."""
from __future__ import annotations

import pytest

from outreach.runtime import errors
from outreach.runtime.lead_csv import clean_lead_fields, parse_leads_csv


def test_headers_are_case_insensitive_with_aliases_and_bom():
    parsed = parse_leads_csv("\ufeffFIRSTNAME, last_name ,E-Mail,Telegram_Username\nA,B,c@d.e,@tg\n".encode())
    assert parsed.total == 1
    row = parsed.rows[0]
    assert (row["first_name"], row["last_name"], row["telegram_username"]) == ("A", "B", "tg")
    assert row["email"] is None  # E-Mail is not a known alias


def test_duplicates_inside_the_file_by_each_key():
    data = b"email,phone,telegram\na@x.io,1,t1\nA@X.IO,2,t2\nb@x.io,1,t3\nc@x.io,3,T1\nd@x.io,4,t4\n"
    parsed = parse_leads_csv(data)
    assert parsed.total == 5 and parsed.duplicates == 3
    assert [row["row_number"] for row in parsed.rows] == [1, 5]


def test_rows_without_contact_are_reported_with_their_number():
    parsed = parse_leads_csv(b"company,email\nAcme,\n,\nBeta,b@x.io\n")
    assert parsed.total == 2  # the blank line is not a row
    assert parsed.errors == [{"row": 1, "error": "No contact information"}]
    assert len(parsed.rows) == 1


def test_short_rows_and_quoted_commas():
    parsed = parse_leads_csv(b'firstName,company,email\n"Doe, J",\n')
    assert parsed.rows[0]["first_name"] == "Doe, J" and parsed.rows[0]["email"] is None


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"\xff\xfe", "UTF-8"),
    (b"a,b\n1,2\n", "No known columns"),
])
def test_unusable_files(data, message):
    with pytest.raises(errors.Invalid, match=message):
        parse_leads_csv(data)


def test_clean_lead_fields():
    assert clean_lead_fields({"email": "  ", "telegram_username": " @@x ", "company": None}) == {
        "first_name": None, "last_name": None, "phone": None, "email": None, "telegram_username": "x",
        "company": None, "timezone": None,
    }
