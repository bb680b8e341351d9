"""The one serializer."""
from __future__ import annotations

import datetime
import uuid

import orjson

from outreach.http import wire


def test_camel_case_top_level_keys_only():
    row = {"org_id": 1, "last4": "abcd", "recording_url": "u", "metadata": {"to_email": "x"}}
    assert wire.to_wire(row) == {"orgId": 1, "last4": "abcd", "recordingUrl": "u", "metadata": {"to_email": "x"}}


def test_times_have_milliseconds_and_z():
    moment = datetime.datetime(2026, 3, 24, 10, 15, 30, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    identifier = uuid.uuid4()
    encoded = orjson.loads(wire.dumps({"t": moment, "id": identifier, "d": datetime.date(2026, 1, 2)}))
    assert encoded == {"t": "2026-03-24T08:15:30.123Z", "id": str(identifier), "d": "2026-01-02"}
