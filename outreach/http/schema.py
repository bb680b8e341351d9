"""Request models: fields grouped into named models that both validate input and describe it as JSON Schema.

The OpenAPI document (http.openapi) is built from these same objects, so what it promises is what the
handlers check. A model checks each field on its own; rules that span fields or need the database (a lead
needs a contact, status transitions, ownership) stay in the handlers and in runtime.policy.

A field's failures have reasons (`type`, `enum`, `length`, `pattern`, `range`, `item`, `missing`); its
`message` is one text for all of them, or a mapping by reason, each a text or a function of the refused
value. Reasons without a message get a plain default ("firstName must be a string").
"""
from __future__ import annotations

import abc
import copy
import dataclasses
import datetime
import math
import re
import uuid
from collections.abc import Callable, Mapping

from outreach.runtime import errors

OMIT = object()  # the default of a field whose absence leaves its key out of the result


def null(value) -> bool:
    return value is None


def blank(value) -> bool:
    return value is None or value == ""


def falsy(value) -> bool:
    """JavaScript's falsy, which the dashboard's contract uses for "not given"."""
    return not value


def never(value) -> bool:
    """Nothing is "not given": a null is validated like any other value (and refused by its kind)."""
    return False


class Failure(Exception):
    """Why a value was refused; the field turns it into its message."""

    def __init__(self, reason: str, value=None):
        super().__init__(reason)
        self.reason = reason
        self.value = value


class Kind(abc.ABC):
    """The type of a field's value. `text` says the value came from a query string or a form."""

    noun = "valid"

    @abc.abstractmethod
    def parse(self, value, *, text: bool):
        """The value converted, or Refused."""

    @abc.abstractmethod
    def json_schema(self) -> dict:
        """This kind as JSON Schema, for the OpenAPI document."""

    def describe(self, name: str, reason: str, value) -> str:
        return f"{name} must be {self.noun}"


@dataclasses.dataclass(frozen=True)
class Text(Kind):
    max_length: int | None = None
    min_length: int = 0
    pattern: str | None = None  # the whole (stripped) value must match
    enum: tuple[str, ...] = ()
    strip: bool | str = False  # True: whitespace; a string: those characters
    one_line: bool = False  # every run of whitespace, line breaks included, becomes one space
    check: Callable[[str], bool] | None = None  # a rule a pattern cannot say; refused as `pattern`
    format: str | None = None  # documentation only (email, uri)

    noun = "a string"

    def parse(self, value, *, text: bool):
        if not isinstance(value, str):
            raise Failure("type", value)
        if self.one_line:
            value = " ".join(value.split())
        if self.strip:
            value = value.strip() if self.strip is True else value.strip(self.strip)
        if self.enum and value not in self.enum:
            raise Failure("enum", value)
        if len(value) < self.min_length or (self.max_length is not None and len(value) > self.max_length):
            raise Failure("length", value)
        if self.pattern and not re.fullmatch(self.pattern, value) or self.check and not self.check(value):
            raise Failure("pattern", value)
        return value

    def json_schema(self) -> dict:
        schema = {"type": "string"}
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.min_length:
            schema["minLength"] = self.min_length
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.pattern:
            schema["pattern"] = f"^(?:{self.pattern})$"
        if self.format:
            schema["format"] = self.format
        return schema

    def describe(self, name: str, reason: str, value) -> str:
        if reason == "enum":
            return f"{name} must be one of: {', '.join(self.enum)}"
        if reason == "length" and self.max_length is None:
            return f"{name} must not be empty" if self.min_length == 1 else \
                f"{name} must be at least {self.min_length} characters"
        if reason == "length":
            return f"{name} must be {self.min_length} to {self.max_length} characters" if self.min_length \
                else f"{name} must be at most {self.max_length} characters"
        if reason == "pattern":
            return f"{name} is not valid"
        return super().describe(name, reason, value)


@dataclasses.dataclass(frozen=True)
class Integer(Kind):
    minimum: int | None = None
    maximum: int | None = None
    clamp: bool = False  # out of bounds is brought within them, not refused

    noun = "a whole number"

    def parse(self, value, *, text: bool):
        if text:
            try:
                value = int(value)
            except ValueError:
                raise Failure("type", value) from None
        elif isinstance(value, bool) or not isinstance(value, int):
            raise Failure("type", value)
        return bounded(value, self.minimum, self.maximum, self.clamp)

    def json_schema(self) -> dict:
        return with_bounds({"type": "integer"}, self.minimum, self.maximum)

    def describe(self, name: str, reason: str, value) -> str:
        if reason == "range":
            return f"{name} must be a whole number from {self.minimum} to {self.maximum}"
        return super().describe(name, reason, value)


@dataclasses.dataclass(frozen=True)
class Number(Kind):
    minimum: float | None = None
    maximum: float | None = None

    noun = "a number"

    def parse(self, value, *, text: bool):
        if text:
            try:
                value = float(value)
            except ValueError:
                raise Failure("type", value) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Failure("type", value)
        return float(bounded(value, self.minimum, self.maximum, clamp=False))

    def json_schema(self) -> dict:
        return with_bounds({"type": "number"}, self.minimum, self.maximum)

    def describe(self, name: str, reason: str, value) -> str:
        if self.minimum is None or self.maximum is None:
            return super().describe(name, reason, value)
        return f"{name} must be a number from {self.minimum} to {self.maximum}"  # the type and the range at once


def bounded(value, minimum, maximum, clamp: bool):
    if minimum is not None and value < minimum:
        if not clamp:
            raise Failure("range", value)
        value = minimum
    if maximum is not None and value > maximum:
        if not clamp:
            raise Failure("range", value)
        value = maximum
    return value


def with_bounds(schema: dict, minimum, maximum) -> dict:
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


@dataclasses.dataclass(frozen=True)
class Boolean(Kind):
    """JSON true or false; in a query string also 1/0 and yes/no, in any case."""

    noun = "true or false"
    TRUE_WORDS = frozenset({"1", "true", "yes"})
    FALSE_WORDS = frozenset({"0", "false", "no"})

    def parse(self, value, *, text: bool):
        if text and isinstance(value, str) and value.lower() in self.TRUE_WORDS | self.FALSE_WORDS:
            return value.lower() in self.TRUE_WORDS
        if not text and isinstance(value, bool):
            return value
        raise Failure("type", value)

    def json_schema(self) -> dict:
        return {"type": "boolean"}


@dataclasses.dataclass(frozen=True)
class Uuid(Kind):
    noun = "a UUID"

    def parse(self, value, *, text: bool):
        if isinstance(value, str) and len(value) == 36:
            try:
                return uuid.UUID(value)
            except ValueError:
                pass
        raise Failure("type", value)

    def json_schema(self) -> dict:
        return {"type": "string", "format": "uuid"}


@dataclasses.dataclass(frozen=True)
class DateTime(Kind):
    """ISO 8601; a time without a zone (a datetime-local input) is taken as UTC."""

    noun = "an ISO 8601 date and time"

    def parse(self, value, *, text: bool):
        if not isinstance(value, str):
            raise Failure("type", value)
        try:
            parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
            parsed.astimezone(datetime.timezone.utc)  # a time that leaves the calendar in UTC is no time
        except (ValueError, OverflowError):
            raise Failure("type", value) from None
        return parsed

    def json_schema(self) -> dict:
        return {"type": "string", "format": "date-time"}


@dataclasses.dataclass(frozen=True)
class Array(Kind):
    items: Kind
    min_items: int = 0
    distinct: bool = False  # repeats are dropped, the first kept in place

    noun = "an array"

    def parse(self, value, *, text: bool):
        if not isinstance(value, list):
            raise Failure("type", value)
        if len(value) < self.min_items:
            raise Failure("length", value)
        parsed = []
        for item in value:
            try:
                parsed.append(self.items.parse(item, text=text))
            except (Failure, errors.Invalid):
                raise Failure("item", item) from None
        return list(dict.fromkeys(parsed)) if self.distinct else parsed

    def json_schema(self) -> dict:
        schema = {"type": "array", "items": self.items.json_schema()}
        if self.min_items:
            schema["minItems"] = self.min_items
        return schema

    def describe(self, name: str, reason: str, value) -> str:
        if reason == "length":
            return f"{name} must have at least {self.min_items} items"
        if reason == "item":
            return f"Invalid item in {name}: {value!r}"
        return super().describe(name, reason, value)


@dataclasses.dataclass(frozen=True)
class Object(Kind):
    """A JSON object: free-form, or one that `model` validates (its own messages stand)."""

    model: "Model | None" = None

    noun = "an object"

    def parse(self, value, *, text: bool):
        if not isinstance(value, dict):
            raise Failure("type", value)
        return self.model.parse(value) if self.model is not None else value

    def json_schema(self) -> dict:
        return self.model.json_schema() if self.model is not None else {"type": "object"}


@dataclasses.dataclass(frozen=True)
class Anything(Kind):
    """Any JSON value: for parts a provider owns, which the handler reads defensively."""

    def parse(self, value, *, text: bool):
        return value

    def json_schema(self) -> dict:
        return {}


@dataclasses.dataclass(frozen=True)
class Binary(Kind):
    """A file part of a multipart body; read as a stream by its handler, so only described here."""

    noun = "a file"

    def parse(self, value, *, text: bool):
        raise Failure("type", value)

    def json_schema(self) -> dict:
        return {"type": "string", "format": "binary"}


@dataclasses.dataclass(frozen=True)
class Field:
    name: str  # as on the wire
    kind: Kind
    required: bool = False
    empty: Callable[[object], bool] = null  # values that count as not given
    default: object = None  # the result when not given; OMIT leaves the key out
    message: str | Callable | Mapping | None = None
    column: str | None = None  # the result's key; the name in snake_case by default
    error: type[errors.ServiceError] = errors.Invalid  # for a value refused (a missing field is always Invalid)
    description: str = ""
    nullable: bool | None = None  # documented null; by default, when null counts as not given and is allowed

    @property
    def key(self) -> str:
        return self.column or snake(self.name)

    def fail(self, reason: str, value) -> errors.ServiceError:
        message = self.message
        if isinstance(message, Mapping):
            message = message.get(reason)
        if message is None:
            message = f"{self.name} is required" if reason == "missing" else self.kind.describe(self.name, reason,
                                                                                                  value)
        error = errors.Invalid if reason == "missing" else self.error  # leaving a field out is always a bad request
        return error(message(value) if callable(message) else message)

    def parse(self, value, *, text: bool):
        try:
            return self.kind.parse(value, text=text)
        except Failure as failure:
            raise self.fail(failure.reason, failure.value) from None
        except errors.Invalid:  # a nested model's own message stands, unless one text covers this whole field
            if self.message is None or isinstance(self.message, Mapping):
                raise
            raise self.fail("item", value) from None

    def fallback(self):
        return copy.deepcopy(self.default) if isinstance(self.default, (list, dict)) else self.default

    def json_schema(self, *, text: bool = False) -> dict:
        schema = self.kind.json_schema()
        nullable = self.empty(None) and not self.required if self.nullable is None else self.nullable
        if nullable and not text:  # a query string or form has no null
            schema["nullable"] = True
        if self.default is not OMIT and self.default is not None and not self.required:
            schema["default"] = self.fallback()
        if self.description:
            schema["description"] = self.description
        return schema


@dataclasses.dataclass(frozen=True)
class Model:
    name: str  # the OpenAPI component name
    fields: tuple[Field, ...]
    partial: bool = False  # an update: absent keys are left out of the result, not defaulted
    text: bool = False  # a query string or a form: every value arrives as a string
    unknown: Callable[[list[str]], str] | None = None  # set: keys outside the model are refused with this message
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "fields", tuple(self.fields))

    def parse(self, data: Mapping) -> dict:
        """The validated values by result key. Missing required fields are reported before any field's own rule."""
        self.refuse_unknown(data)
        for field in self.fields:
            if field.required and (field.name not in data or field.empty(data[field.name])):
                raise field.fail("missing", data.get(field.name))
        result = {}
        for field in self.fields:
            value = self.parse_field(field, data)
            if value is not OMIT:
                result[field.key] = value
        return result

    def parse_field(self, field: Field, data: Mapping):
        if field.name not in data:
            return OMIT if self.partial else field.fallback()
        value = data[field.name]
        if field.empty(value):
            return field.fallback()
        parsed = field.parse(value, text=self.text)
        return field.fallback() if field.empty(parsed) and not field.required else parsed  # trimmed to nothing

    def refuse_unknown(self, data: Mapping) -> None:
        if self.unknown is not None:
            extra = sorted(set(data) - {field.name for field in self.fields})
            if extra:
                raise errors.Invalid(self.unknown(extra))

    def field(self, name: str) -> Field:
        return next(field for field in self.fields if field.name == name)

    def json_schema(self) -> dict:
        schema: dict = {"type": "object", "properties": {
            field.name: field.json_schema(text=self.text) for field in self.fields}}
        required = [field.name for field in self.fields if field.required]
        if required:
            schema["required"] = required
        if self.unknown is not None:
            schema["additionalProperties"] = False
        if self.description:
            schema["description"] = self.description
        return schema


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def reply(name: str, kinds: Mapping[str, Kind], nullable: tuple[str, ...] = ()) -> Model:
    """A response body's shape, for the OpenAPI document only: every key present, the `nullable` ones maybe null."""
    return Model(name, [Field(key, kind, required=True, nullable=key in nullable) for key, kind in kinds.items()])


SUCCESS = reply("Success", {"success": Boolean()})
RECEIVED = reply("WebhookReceived", {"received": Boolean()})
