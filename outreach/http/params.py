"""Reading requests: the models a handler declares, JSON bodies, forms, path ids, pagination.

A handler declares what it reads with `@accepts(body=..., query=..., form=...)` (pydantic models, see
http.validation) and reads it with `body(request)`, `query(request)` or `parse(request, part, data)`, which
validate through those same models and give the values as a dict by field name; the OpenAPI document is built
from the declarations. Bad input becomes a clear 400 or 404 with the contract's text (http.validation_errors).
"""
from __future__ import annotations

import dataclasses
import math
import uuid
from typing import Annotated, Any

import orjson
from aiohttp import web
from pydantic import Field

from outreach.http import validation
from outreach.runtime import errors
from outreach.runtime.models import Page

MAX_LIMIT = 100
MAX_PAGE = 1_000_000_000  # beyond any data set; keeps the offset inside PostgreSQL's bigint
INPUTS = "http_inputs"
ANSWER = "http_answer"


@dataclasses.dataclass(frozen=True)
class Inputs:
    body: type[validation.Model] | None = None  # a JSON object
    query: type[validation.Model] | None = None
    form: type[validation.Model] | None = None  # form fields (documented as urlencoded)
    upload: type[validation.Model] | None = None  # multipart with files, streamed by the handler itself
    headers: type[validation.Model] | None = None  # signature headers, which the handler verifies


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None  # a validation.Reply, list[Reply], or a JSON Schema dict; None: an object, not described
    media_type: str = "application/json"


def accepts(**models: type[validation.Model]):
    """Declare the models a handler reads; they validate its input and describe it in the OpenAPI document."""
    inputs = Inputs(**models)

    def attach(handler):
        setattr(handler, INPUTS, inputs)
        return handler

    return attach


def answers(status: int = 200, body: Any = None, media_type: str = "application/json"):
    """Declare a handler's success status and body, for the OpenAPI document."""
    answer = Answer(status, body, media_type)

    def attach(handler):
        setattr(handler, ANSWER, answer)
        return handler

    return attach


def inputs_of(handler) -> Inputs:
    return getattr(handler, INPUTS, None) or Inputs()


def answer_of(handler) -> Answer:
    return getattr(handler, ANSWER, None) or Answer()


def parse(request: web.Request, part: str, data) -> dict:
    """`data` (a JSON object, a query, form fields) through the model the route's handler declares for `part`."""
    handler = request.match_info.handler
    model = getattr(inputs_of(handler), part)
    if model is None:
        raise LookupError(f"{handler.__name__} reads a {part} it does not declare with @accepts")
    return validation.parse(model, data)


async def body(request: web.Request) -> dict:
    return parse(request, "body", await read_json(request))


def query(request: web.Request) -> dict:
    return parse(request, "query", request.query)


async def read_form(request: web.Request):
    """The fields of a urlencoded or multipart body; a malformed body has none."""
    try:
        return await request.post()
    except ValueError:
        return {}


async def read_json(request: web.Request) -> dict:
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise errors.Invalid("Invalid JSON body") from None
    if not isinstance(data, dict):
        raise errors.Invalid("Request body must be a JSON object")
    return data


def parse_uuid(value, message: str = "Not found", error=errors.NotFound) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) == 36:
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise error(message)


def path_id(request: web.Request, name: str = "id", message: str = "Not found") -> uuid.UUID:
    """A path id that is not a UUID names nothing: 404, like an id of another organization."""
    return parse_uuid(request.match_info[name], message)


# --- query fields shared by the list routes -------------------------------------------------------------

PageNumber = Annotated[int, validation.TextInteger(minimum=1, maximum=MAX_PAGE, clamp=True),
                       validation.Empty(validation.blank),
                       Field(description="1-based; out-of-range values are brought within range")]
PageLimit = Annotated[int, validation.TextInteger(minimum=1, maximum=MAX_LIMIT, clamp=True),
                      validation.Empty(validation.blank), Field(description=f"items per page, at most {MAX_LIMIT}")]


class PageQuery(validation.Model):
    """`page` and `limit` (25 unless a subclass says otherwise)."""

    textual = True
    page: PageNumber = 1
    limit: PageLimit = 25


def page_of(values: dict) -> Page:
    return Page(number=values["page"], limit=values["limit"])


def status_choice(enum_type) -> Any:
    """`all`, empty or absent means no filter (None); anything else must be one of the enum's values."""
    allowed = ("all", *(member.value for member in enum_type))
    return Annotated[validation.one_of(allowed), validation.Empty(lambda value: value in (None, "", "all"))]


def pagination(page: Page, total: int) -> dict:
    return {"page": page.number, "limit": page.limit, "total": total, "totalPages": math.ceil(total / page.limit)}


class Pagination(validation.Reply):
    page: int
    limit: int
    total: int
    total_pages: int

