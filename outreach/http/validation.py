"""Request and response models on pydantic v2: the kinds of field the API reads, and reading input through them.

A request model is a `Model` (a JSON body, or a query or form with `textual = True`, whose values arrive as
strings); a response model is a `Reply`, which only describes an answer in the OpenAPI document. Field names
are the keys handlers read (snake_case); the wire names are their camelCase aliases.

What counts as "not given" is part of the contract: `Empty(blank)` gives the field its default for null or
"" (and for text trimmed to nothing), `Required(falsy)` refuses a falsy value as missing. Refusals become
the contract's texts in http.validation_errors, the one table of messages.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

import pydantic
from pydantic import AfterValidator, ConfigDict, Field, PlainValidator, Strict, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError, core_schema

from outreach.http import validation_errors
from outreach.runtime import errors


# --- what counts as "not given" ---------------------------------------------------------------------------

def null(value) -> bool:
    return value is None


def blank(value) -> bool:
    return value is None or value == ""


def falsy(value) -> bool:
    """JavaScript's falsy, which the dashboard's contract uses for "not given"."""
    return not value


def null_or_empty_list(value) -> bool:
    return value is None or value == []


@dataclasses.dataclass(frozen=True)
class Empty:
    """A value `when` says is not given takes the field's default; so does a value that validates to one (text
    trimmed to nothing). Documented as nullable when null is not given. Model.parse applies it around pydantic's
    validation: a Python validator on every field would cost more than the whole validation."""

    when: Callable[[Any], bool] = null

    def __get_pydantic_json_schema__(self, schema, handler):
        described = handler(schema)
        return {**described, "nullable": True} if self.when(None) else described


@dataclasses.dataclass(frozen=True)
class Required:
    """On a required field: a value `when` says is not given is refused as missing, like an absent one."""

    when: Callable[[Any], bool] = null


# --- the kinds of value --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TextRules:
    """A string's rules, checked by pydantic-core after the value is trimmed: length, then the pattern, which
    the whole value must match. `strip` True trims whitespace, a string trims those characters; `one_line`
    makes every run of whitespace one space; `check` is a rule a pattern cannot say (refused as a pattern)."""

    strip: bool | str = False
    one_line: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    check: Callable[[str], bool] | None = None
    format: str | None = None  # documentation only (email, uri)

    def __get_pydantic_core_schema__(self, source, handler):
        schema = core_schema.str_schema(
            strict=True, strip_whitespace=self.strip is True or self.one_line, min_length=self.min_length or None,
            max_length=self.max_length, pattern=f"^(?:{self.pattern})$" if self.pattern else None)
        if self.check is not None:
            schema = core_schema.no_info_after_validator_function(checked(self.check), schema)
        if self.one_line:
            schema = core_schema.no_info_before_validator_function(one_line, schema)
        elif isinstance(self.strip, str):
            schema = core_schema.no_info_before_validator_function(stripping(self.strip), schema)
        return schema

    def __get_pydantic_json_schema__(self, schema, handler):
        described = handler(schema)
        return {**described, "format": self.format} if self.format else described


def Text(**rules) -> Any:  # noqa: N802 (a type, named like one)
    return Annotated[str, TextRules(**rules)]


def one_line(value):
    return " ".join(value.split()) if isinstance(value, str) else value


def stripping(characters: str) -> Callable:
    return lambda value: value.strip(characters) if isinstance(value, str) else value


def checked(check: Callable[[str], bool]) -> Callable:
    def apply(value: str) -> str:
        if not check(value):
            raise PydanticCustomError("string_pattern_mismatch", "String should match the rule")
        return value

    return apply


def one_of(values) -> Any:
    """One of these strings (documented as an enum)."""
    return Literal[tuple(values)]


@dataclasses.dataclass(frozen=True)
class UuidText:
    """Only the 36-character form (pydantic's own UUID also takes 32 hex digits, braces and URNs); parsed by
    pydantic-core. Any refusal reads as "not a UUID" (validation_errors.reason_of)."""

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.chain_schema([core_schema.str_schema(strict=True, min_length=36, max_length=36),
                                         core_schema.uuid_schema()])

    def __get_pydantic_json_schema__(self, schema, handler):
        return {"type": "string", "format": "uuid"}


def parse_datetime(value) -> datetime.datetime:
    """ISO 8601; a time without a zone (a datetime-local input) is taken as UTC."""
    if not isinstance(value, str):
        raise PydanticCustomError("datetime_type", "Input should be a valid datetime")
    try:
        parsed = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
        parsed.astimezone(datetime.timezone.utc)  # a time that leaves the calendar in UTC is no time
    except (ValueError, OverflowError):
        raise PydanticCustomError("datetime_parsing", "Input should be a valid datetime") from None
    return parsed


Uuid = Annotated[uuid.UUID, UuidText()]
DateTime = Annotated[datetime.datetime, PlainValidator(parse_datetime),
                     WithJsonSchema({"type": "string", "format": "date-time"})]
WholeNumber = Annotated[int, Strict()]
Boolean = Annotated[bool, Strict()]
Object = Annotated[dict, Strict(), WithJsonSchema({"type": "object"})]  # free-form
Anything = Any  # a part a provider owns, which the handler reads defensively
Binary = Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]  # streamed by its handler


def Number(minimum: float | None = None, maximum: float | None = None) -> Any:  # noqa: N802
    return Annotated[float, Strict(), Field(ge=minimum, le=maximum, allow_inf_nan=False)]


def Array(items, *, min_items: int | None = None, distinct: bool = False) -> Any:  # noqa: N802
    """A JSON array; `distinct` drops repeats, keeping the first in place."""
    rules = [Strict(), Field(min_length=min_items)]
    if distinct:
        rules.append(AfterValidator(lambda values: list(dict.fromkeys(values))))
    return Annotated[list[items], *rules]


@dataclasses.dataclass(frozen=True)
class TextInteger:
    """A whole number written in a query string or a form; `clamp` brings it within bounds instead of refusing."""

    minimum: int | None = None
    maximum: int | None = None
    clamp: bool = False

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_plain_validator_function(self.parse)

    def __get_pydantic_json_schema__(self, schema, handler):
        bounds = {"minimum": self.minimum, "maximum": self.maximum}
        return {"type": "integer", **{key: value for key, value in bounds.items() if value is not None}}

    def parse(self, value) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise PydanticCustomError("int_parsing", "Input should be a valid integer") from None
        if self.minimum is not None and number < self.minimum:
            if not self.clamp:
                raise PydanticCustomError("greater_than_equal", "Input is too small")
            number = self.minimum
        if self.maximum is not None and number > self.maximum:
            if not self.clamp:
                raise PydanticCustomError("less_than_equal", "Input is too large")
            number = self.maximum
        return number


TRUE_WORDS, FALSE_WORDS = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})


def parse_text_boolean(value) -> bool:
    """1/0, true/false, yes/no in any case (pydantic's own also takes on/off, t/f, y/n)."""
    word = value.lower() if isinstance(value, str) else None
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise PydanticCustomError("bool_parsing", "Input should be a valid boolean")


TextBoolean = Annotated[bool, PlainValidator(parse_text_boolean), WithJsonSchema({"type": "boolean"})]


# --- models ----------------------------------------------------------------------------------------------------

class Model(pydantic.BaseModel):
    """A request body (a JSON object), or with `textual` a query string, a form or headers."""

    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", hide_input_in_errors=True)
    partial: ClassVar[bool] = False  # an update: keys absent from the input are left out of the result
    textual: ClassVar[bool] = False  # every value arrives as a string; nothing is documented as null
    absent_when_none: ClassVar[frozenset[str]] = frozenset()  # fields left out, not None, when not given
    aliases: ClassVar[dict[str, str]] = {}  # field name: wire name
    not_given: ClassVar[tuple] = ()  # (wire name, when) of the Empty and Required fields
    empties: ClassVar[tuple] = ()  # (field name, when, FieldInfo) of the Empty fields
    nested: ClassVar[tuple[str, ...]] = ()  # fields holding models, given as dicts

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields
        cls.aliases = {name: field.alias or name for name, field in fields.items()}
        markers = [(name, marker) for name, field in fields.items() for marker in field.metadata
                   if isinstance(marker, (Empty, Required))]
        cls.not_given = tuple((cls.aliases[name], marker.when) for name, marker in markers)
        cls.empties = tuple((name, marker.when, fields[name]) for name, marker in markers if isinstance(marker, Empty))
        cls.nested = tuple(name for name, field in fields.items() if holds_model(field.annotation))


def holds_model(annotation) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return True
    return any(holds_model(argument) for argument in typing.get_args(annotation))


def default(value: list | dict) -> Any:
    """A list or dict default, copied for each request (pydantic's own deep copy costs more than the rest of a
    validation), and documented."""
    return Field(default_factory=functools.partial(copy.copy, value), json_schema_extra={"default": value})


class Reply(pydantic.BaseModel):
    """A success body, for the OpenAPI document only: every key present, `X | None` ones maybe null."""

    model_config = ConfigDict(alias_generator=to_camel)


class Success(Reply):
    success: bool


class WebhookReceived(Reply):
    received: bool


def parse(model: type[Model], data: Mapping) -> dict:
    """The validated values by field name; a refusal is the contract's 400 (or 404) with its message."""
    given = data if type(data) is dict else {alias: data[alias] for alias in model.aliases.values() if alias in data}
    refused = [alias for alias, when in model.not_given if alias in given and when(given[alias])]
    try:  # a value not given is left out: pydantic gives the default, or refuses a required field as missing
        values = model.__pydantic_validator__.validate_python(
            {key: value for key, value in given.items() if key not in refused} if refused else given).__dict__
    except pydantic.ValidationError as exc:
        raise validation_errors.refusal(model, exc.errors(include_url=False), data, json_schema(model)) from None
    for name, when, field in model.empties:
        if values[name] is not None and when(values[name]):  # trimmed to nothing
            values[name] = field.get_default(call_default_factory=True)
    for name in model.nested:
        values[name] = as_dicts(values[name])
    return left_out(model, values, given)


def left_out(model: type[Model], values: dict, given: Mapping) -> dict:
    if model.partial:
        for name, alias in model.aliases.items():
            if alias not in given:
                del values[name]
    for name in model.absent_when_none:
        if values.get(name, 0) is None:
            del values[name]
    return values


def as_dicts(value):
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump()
    return [as_dicts(item) for item in value] if isinstance(value, list) else value


def missing(model: type[Model], alias: str) -> errors.Invalid:
    """The model's refusal of `alias` as missing, for a handler that reads that part itself (a streamed file)."""
    return validation_errors.refusal(model, [{"type": "missing", "loc": (alias,)}], {}, json_schema(model))


# --- JSON Schema for the OpenAPI document (3.0: `nullable`, no `const`, no titles) -------------------------

class OpenApiSchema(GenerateJsonSchema):
    def nullable_schema(self, schema):
        inner = self.generate_inner(schema["schema"])
        return {"allOf": [inner], "nullable": True} if "$ref" in inner else {**inner, "nullable": True}

    def literal_schema(self, schema):
        described = super().literal_schema(schema)
        if "const" in described:
            described["enum"] = [described.pop("const")]
        return described

    def default_schema(self, schema):
        described = super().default_schema(schema)
        if "default" in described and described["default"] is None:
            del described["default"]
        return described


REF_TEMPLATE = "#/components/schemas/{model}"


@functools.cache
def json_schema(model: type[pydantic.BaseModel]) -> dict:
    """The model as OpenAPI 3.0 JSON Schema; nested models are in `$defs`, referenced as components."""
    described = without_titles(model.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=OpenApiSchema))
    if getattr(model, "textual", False):  # a query string or a form has no null
        for value in described["properties"].values():
            value.pop("nullable", None)
    return described


def without_titles(schema):
    if isinstance(schema, list):
        return [without_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: ({name: without_titles(value) for name, value in item.items()} if key in ("properties", "$defs")
                  else without_titles(item)) for key, item in schema.items() if key != "title"}
