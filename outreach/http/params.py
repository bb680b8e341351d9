"""Reading requests: the models a handler declares, JSON bodies, forms, path ids, pagination.

A handler declares what it reads with `@accepts(body=..., query=..., form=...)` and reads it with
`body(request)`, `query(request)` or `parse(request, part, data)`, which validate through those same models;
the OpenAPI document is built from the declarations. Bad input becomes a clear 400 or 404.
"""
from __future__ import annotations

import dataclasses
import math
import uuid

import orjson
from aiohttp import web

from outreach.http import schema
from outreach.runtime import errors
from outreach.runtime.models import Page

MAX_LIMIT = 100
MAX_PAGE = 1_000_000_000  # beyond any data set; keeps the offset inside PostgreSQL's bigint
INPUTS = "http_inputs"
ANSWER = "http_answer"


@dataclasses.dataclass(frozen=True)
class Inputs:
    body: schema.Model | None = None  # a JSON object
    query: schema.Model | None = None
    form: schema.Model | None = None  # form fields (documented as urlencoded)
    upload: schema.Model | None = None  # multipart with files, streamed by the handler itself
    headers: schema.Model | None = None  # signature headers, which the handler verifies


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int = 200
    body: schema.Model | dict | None = None  # the success body's schema; None: an object, not described
    media_type: str = "application/json"


def accepts(**models: schema.Model):
    """Declare the models a handler reads; they validate its input and describe it in the OpenAPI document."""
    inputs = Inputs(**models)

    def attach(handler):
        setattr(handler, INPUTS, inputs)
        return handler

    return attach


def answers(status: int = 200, body: schema.Model | dict | None = None, media_type: str = "application/json"):
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
    return model.parse(data)


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

PAGE = schema.Field("page", schema.Integer(minimum=1, maximum=MAX_PAGE, clamp=True), empty=schema.blank, default=1,
                    description="1-based; out-of-range values are brought within range")


def page_fields(default_limit: int) -> tuple[schema.Field, ...]:
    limit = schema.Field("limit", schema.Integer(minimum=1, maximum=MAX_LIMIT, clamp=True), empty=schema.blank,
                         default=default_limit, description=f"items per page, at most {MAX_LIMIT}")
    return PAGE, limit


def page_of(values: dict) -> Page:
    return Page(number=values["page"], limit=values["limit"])


def status_filter(enum_type) -> schema.Field:
    """`all`, empty or absent means no filter; anything else must be one of the enum's values."""
    allowed = ("all", *(member.value for member in enum_type))
    return schema.Field("status", schema.Text(enum=allowed), empty=lambda value: value in (None, "", "all"),
                        message=f"Invalid status filter. Use one of: {', '.join(allowed)}")


def pagination(page: Page, total: int) -> dict:
    return {"page": page.number, "limit": page.limit, "total": total, "totalPages": math.ceil(total / page.limit)}


PAGINATION = schema.reply("Pagination", {key: schema.Integer() for key in ("page", "limit", "total", "totalPages")})
