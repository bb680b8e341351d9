"""Request models on pydantic: what a model accepts, the contract's text when it refuses (http.validation_errors),
and its OpenAPI JSON Schema."""
from __future__ import annotations

import datetime
import uuid
from typing import Annotated, ClassVar

import pytest
from multidict import CIMultiDict, MultiDict
from pydantic import ConfigDict, Field

from outreach.http import validation, validation_errors
from outreach.runtime import errors

Tag = validation.one_of(("a", "b"))


class Send(validation.Model):
    to: Annotated[validation.Text(strip=True, max_length=10), validation.Required(validation.falsy)]
    subject: Annotated[validation.Text(one_line=True, min_length=1), validation.Required(validation.falsy)]
    tags: Annotated[validation.Array(Tag, distinct=True), validation.Empty(), validation.default(["a"])]
    send_at: Annotated[validation.DateTime, validation.Empty(validation.blank)] = None
    priority: Annotated[validation.WholeNumber, Field(ge=1, le=5)] | None = None
    ref: Annotated[validation.Uuid, validation.Empty(validation.falsy)] = None
    absent_when_none: ClassVar = frozenset({"priority"})


class Update(validation.Model):
    partial = True
    name: validation.Text(strip=True, min_length=1) = None
    label: Annotated[validation.Text(strip=True), validation.Empty(validation.blank)] = None


class Query(validation.Model):
    textual = True
    page: Annotated[int, validation.TextInteger(minimum=1, maximum=100, clamp=True),
                    validation.Empty(validation.blank)] = 1
    wait: validation.TextBoolean = True
    id: Annotated[validation.Uuid, validation.Required(validation.blank)]


class Turn(validation.Model):
    role: validation.one_of(("user",))


class Strict(validation.Model):
    turns: validation.Array(Turn) = None


class Closed(validation.Model):
    model_config = ConfigDict(extra="forbid")
    a: validation.Text() = None


class Digits(validation.Model):
    code: validation.Text(pattern="[0-9]{2}", check=lambda value: value != "00") = None


class Header(validation.Model):
    textual = True
    signature: Annotated[str, validation.Required(validation.blank), Field(alias="X-Signature")]


TABLE = {
    "Send": {"to": {"missing": "Missing required fields: to, subject"},
             "subject": {"missing": "Missing required fields: to, subject"},
             "tags": {"item": "Unknown tag {value!r}"}},
    "Update": {"name": "Name cannot be empty"},
    "Query": {"id": {"missing": "Key ID is required", "type": "Key not found"}},
    "Strict": {"turns": "bad turns"},
    "Closed": {validation_errors.MODEL: {"unknown": "Unknown: {keys}. Allowed: {fields}"}},
}


@pytest.fixture(autouse=True)
def messages(monkeypatch):
    monkeypatch.setattr(validation_errors, "MESSAGES", {**validation_errors.MESSAGES, **TABLE})
    monkeypatch.setattr(validation_errors, "NOT_FOUND", {*validation_errors.NOT_FOUND, ("Query", "id")})


def refusal(model, data) -> errors.ServiceError:
    with pytest.raises(errors.ServiceError) as caught:
        validation.parse(model, data)
    return caught.value


def test_values_come_out_by_field_name_with_defaults():
    assert validation.parse(Send, {"to": " ann ", "subject": "Hi\n  there"}) == {
        "to": "ann", "subject": "Hi there", "tags": ["a"], "send_at": None, "ref": None}
    values = validation.parse(Send, {"to": "b", "subject": "s", "tags": ["b", "a", "b"],
                                     "sendAt": "2030-01-02T03:04:05", "priority": 5, "ref": 0})
    assert values["tags"] == ["b", "a"] and values["priority"] == 5 and values["ref"] is None
    assert values["send_at"] == datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def test_a_default_is_fresh_for_each_request():
    first = validation.parse(Send, {"to": "a", "subject": "s"})
    first["tags"].append("b")
    assert validation.parse(Send, {"to": "a", "subject": "s", "tags": None})["tags"] == ["a"]


def test_missing_required_fields_are_reported_before_any_field_rule():
    assert refusal(Send, {"to": 5}).message == "Missing required fields: to, subject"
    assert refusal(Send, {"to": "", "subject": "s"}).message == "Missing required fields: to, subject"


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
    ({"to": "a", "subject": "s", "ref": "0123456789abcdef0123456789abcdef"}, "ref must be a UUID"),
    ({"to": "a", "subject": "s", "ref": 7}, "ref must be a UUID"),
])
def test_each_failure_has_its_message(data, message):
    failure = refusal(Send, data)
    assert type(failure) is errors.Invalid and failure.message == message


def test_a_partial_model_leaves_absent_keys_out_and_never_refuses_null_unless_told():
    assert validation.parse(Update, {}) == {}
    assert validation.parse(Update, {"label": "  "}) == {"label": None}  # trimmed to nothing is not given
    assert refusal(Update, {"name": None}).message == "Name cannot be empty"
    assert validation.parse(Send, {"to": "a", "subject": "s", "priority": None}).keys() == {
        "to", "subject", "tags", "send_at", "ref"}  # absent_when_none


def test_query_strings_are_parsed_from_text_and_may_clamp():
    key = uuid.uuid4()
    assert validation.parse(Query, MultiDict(page="0", wait="NO", id=str(key))) == {"page": 1, "wait": False, "id": key}
    assert validation.parse(Query, MultiDict(page="", id=str(key)))["page"] == 1
    assert validation.parse(Query, MultiDict(page="10000", id=str(key)))["page"] == 100
    assert refusal(Query, MultiDict(page="2.5", id=str(key))).message == "page must be a whole number"
    assert refusal(Query, MultiDict(wait="on", id=str(key))).message == "wait must be true or false"
    missing, bad = refusal(Query, MultiDict()), refusal(Query, MultiDict(id="nope"))
    assert (type(missing), missing.message) == (errors.Invalid, "Key ID is required")  # missing is always a 400
    assert (type(bad), bad.message) == (errors.NotFound, "Key not found")


def test_headers_are_read_by_name_in_any_case():
    assert validation.parse(Header, CIMultiDict({"x-signature": "abc"})) == {"signature": "abc"}
    assert refusal(Header, CIMultiDict()).message == "X-Signature is required"


def test_a_field_text_covers_its_nested_models_and_items_are_given_whole():
    assert refusal(Strict, {"turns": [{"role": "bot"}]}).message == "bad turns"
    assert validation.parse(Strict, {"turns": [{"role": "user", "extra": 1}]}) == {"turns": [{"role": "user"}]}


def test_unknown_keys_are_refused_only_when_the_model_says_so():
    assert refusal(Closed, {"a": "x", "z": 1, "b": 2}).message == "Unknown: b, z. Allowed: a"
    assert validation.parse(Send, {"to": "a", "subject": "s", "extra": 1})["to"] == "a"


def test_patterns_and_checks_are_whole_value_matches():
    assert validation.parse(Digits, {"code": "42"}) == {"code": "42"}
    for value in ("421", "4", "٤٢", "00", "42\n"):
        assert refusal(Digits, {"code": value}).message == "code is not valid"


def test_templates_fill_only_known_placeholders():
    assert validation_errors.fill("{name} {role: a|b} {value!r}", {"name": "x", "value": "v"}) == "x {role: a|b} 'v'"


def test_json_schema_is_openapi_3_0():
    described = validation.json_schema(Send)
    assert described["required"] == ["to", "subject"]
    assert described["properties"]["to"] == {"type": "string", "maxLength": 10}
    assert described["properties"]["tags"] == {"type": "array", "items": {"type": "string", "enum": ["a", "b"]},
                                               "nullable": True, "default": ["a"]}
    assert described["properties"]["sendAt"] == {"type": "string", "format": "date-time", "nullable": True}
    assert described["properties"]["priority"] == {"type": "integer", "minimum": 1, "maximum": 5, "nullable": True}
    assert validation.json_schema(Digits)["properties"]["code"]["pattern"] == "^(?:[0-9]{2})$"
    assert "nullable" not in validation.json_schema(Query)["properties"]["page"]  # a query string has no null
    assert validation.json_schema(Turn)["properties"]["role"] == {"type": "string", "enum": ["user"]}  # no const


class Row(validation.Reply):
    id: uuid.UUID
    note: str | None


def test_replies_require_every_key_and_say_which_may_be_null():
    described = validation.json_schema(Row)
    assert described["properties"]["note"] == {"type": "string", "nullable": True}
    assert described["required"] == ["id", "note"] and "title" not in described


def models_by_name() -> dict[str, type[validation.Model]]:
    from outreach.http import app  # noqa: F401 (imports every route module, and so every model)

    found, pending = {}, list(validation.Model.__subclasses__())
    while pending:
        model = pending.pop()
        found.setdefault(model.__name__, model)
        pending.extend(model.__subclasses__())
    return found


def test_every_text_of_the_table_names_a_field_of_a_model():
    """A typo in the table would silently fall back to a default text: every entry must name a real field."""
    models = models_by_name()
    for name, fields in validation_errors.MESSAGES.items():
        assert name in models, name
        for field in fields:
            assert field == validation_errors.MODEL or field in models[name].aliases.values(), (name, field)
    for name, field in validation_errors.NOT_FOUND:
        assert field in models[name].aliases.values(), (name, field)
