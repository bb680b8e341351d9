"""The request model layer: what a model accepts, what it answers when it refuses, and its JSON Schema."""
from __future__ import annotations

import datetime
import uuid

import pytest
from multidict import MultiDict

from outreach.http import schema
from outreach.runtime import errors

SEND = schema.Model("Send", [
    schema.Field("to", schema.Text(strip=True, max_length=10), required=True, empty=schema.falsy,
                 message={"missing": "Missing required fields: to, subject"}),
    schema.Field("subject", schema.Text(one_line=True, min_length=1), required=True, empty=schema.falsy,
                 message={"missing": "Missing required fields: to, subject"}),
    schema.Field("tags", schema.Array(schema.Text(enum=("a", "b")), distinct=True), default=["a"],
                 message={"item": lambda item: f"Unknown tag {item!r}"}),
    schema.Field("sendAt", schema.DateTime(), empty=schema.blank),
    schema.Field("priority", schema.Integer(minimum=1, maximum=5), default=schema.OMIT),
])


def refusal(model: schema.Model, data) -> errors.ServiceError:
    with pytest.raises(errors.ServiceError) as caught:
        model.parse(data)
    return caught.value


def test_values_come_out_by_snake_case_key_with_defaults():
    assert SEND.parse({"to": " ann ", "subject": "Hi\n  there"}) == {
        "to": "ann", "subject": "Hi there", "tags": ["a"], "send_at": None}
    values = SEND.parse({"to": "b", "subject": "s", "tags": ["b", "a", "b"], "sendAt": "2030-01-02T03:04:05",
                         "priority": 5})
    assert values["tags"] == ["b", "a"] and values["priority"] == 5
    assert values["send_at"] == datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def test_missing_required_fields_are_reported_before_any_field_rule():
    assert refusal(SEND, {"to": 5}).message == "Missing required fields: to, subject"
    assert refusal(SEND, {"to": "", "subject": "s"}).message == "Missing required fields: to, subject"


@pytest.mark.parametrize("data, message", [
    ({"to": 5, "subject": "s"}, "to must be a string"),
    ({"to": "x" * 11, "subject": "s"}, "to must be at most 10 characters"),
    ({"to": "a", "subject": "   "}, "subject must not be empty"),
    ({"to": "a", "subject": "s", "tags": "a"}, "tags must be an array"),
    ({"to": "a", "subject": "s", "tags": ["c"]}, "Unknown tag 'c'"),
    ({"to": "a", "subject": "s", "sendAt": "soon"}, "sendAt must be an ISO 8601 date and time"),
    ({"to": "a", "subject": "s", "sendAt": "9999-12-31T23:59:59-14:00"}, "sendAt must be an ISO 8601 date and time"),
    ({"to": "a", "subject": "s", "priority": 9}, "priority must be a whole number from 1 to 5"),
    ({"to": "a", "subject": "s", "priority": True}, "priority must be a whole number"),
])
def test_each_failure_has_its_message(data, message):
    failure = refusal(SEND, data)
    assert type(failure) is errors.Invalid and failure.message == message


def test_a_partial_model_leaves_absent_keys_out_and_never_refuses_null_unless_told():
    update = schema.Model("Update", [
        schema.Field("name", schema.Text(strip=True, min_length=1), empty=schema.never, message="Name cannot be empty"),
        schema.Field("label", schema.Text(strip=True), empty=schema.blank),
    ], partial=True)
    assert update.parse({}) == {}
    assert update.parse({"label": "  "}) == {"label": None}  # trimmed to nothing is not given
    assert refusal(update, {"name": None}).message == "Name cannot be empty"


def test_query_strings_are_parsed_from_text_and_may_clamp():
    query = schema.Model("Query", [
        schema.Field("page", schema.Integer(minimum=1, maximum=100, clamp=True), empty=schema.blank, default=1),
        schema.Field("wait", schema.Boolean(), empty=schema.never, default=True),
        schema.Field("id", schema.Uuid(), required=True, empty=schema.blank, error=errors.NotFound,
                     message={"missing": "Key ID is required", "type": "Key not found"}),
    ], text=True)
    key = uuid.uuid4()
    assert query.parse(MultiDict(page="0", wait="NO", id=str(key))) == {"page": 1, "wait": False, "id": key}
    assert query.parse(MultiDict(page="", id=str(key)))["page"] == 1
    assert query.parse(MultiDict(page="10000", id=str(key)))["page"] == 100
    assert refusal(query, MultiDict(page="2.5", id=str(key))).message == "page must be a whole number"
    assert refusal(query, MultiDict(wait="", id=str(key))).message == "wait must be true or false"
    missing, bad = refusal(query, MultiDict()), refusal(query, MultiDict(id="nope"))
    assert (type(missing), missing.message) == (errors.Invalid, "Key ID is required")  # missing is always a 400
    assert (type(bad), bad.message) == (errors.NotFound, "Key not found")


def test_nested_models_keep_their_messages_unless_the_field_has_one():
    turn = schema.Model("Turn", [schema.Field("role", schema.Text(enum=("user",)), required=True)])
    loose = schema.Model("Loose", [schema.Field("turn", schema.Object(turn))])
    strict = schema.Model("Strict", [schema.Field("turns", schema.Array(schema.Object(turn)), message="bad turns")])
    assert refusal(loose, {"turn": {}}).message == "role is required"
    assert refusal(strict, {"turns": [{"role": "bot"}]}).message == "bad turns"


def test_unknown_keys_are_refused_only_when_the_model_says_so():
    closed = schema.Model("Closed", [schema.Field("a", schema.Text())], unknown=lambda keys: f"Unknown: {keys}")
    assert refusal(closed, {"a": "x", "z": 1, "b": 2}).message == "Unknown: ['b', 'z']"
    assert SEND.parse({"to": "a", "subject": "s", "extra": 1})["to"] == "a"


def test_patterns_and_checks_are_whole_value_matches():
    digits = schema.Model("Digits", [schema.Field("code", schema.Text(pattern="[0-9]{2}", check=lambda v: v != "00"))])
    assert digits.parse({"code": "42"}) == {"code": "42"}
    for value in ("421", "4", "٤٢", "00"):
        assert refusal(digits, {"code": value}).message == "code is not valid"


def test_json_schema_follows_the_fields():
    described = SEND.json_schema()
    assert described["required"] == ["to", "subject"]
    assert described["properties"]["to"] == {"type": "string", "maxLength": 10}
    assert described["properties"]["tags"] == {"type": "array", "items": {"type": "string", "enum": ["a", "b"]},
                                               "nullable": True, "default": ["a"]}
    assert described["properties"]["sendAt"] == {"type": "string", "format": "date-time", "nullable": True}
    assert described["properties"]["priority"] == {"type": "integer", "minimum": 1, "maximum": 5, "nullable": True}
    pattern = schema.Text(pattern="a|b").json_schema()["pattern"]
    assert pattern == "^(?:a|b)$"
    reply = schema.reply("Row", {"id": schema.Uuid(), "note": schema.Text()}, ("note",))
    assert reply.json_schema()["properties"]["note"] == {"type": "string", "nullable": True}
    assert reply.json_schema()["required"] == ["id", "note"]
