"""GET /api/openapi.json: the OpenAPI 3 document of every route, built at start-up from the app's router.

Each operation's inputs come from the models its handler declares with `params.accepts` (the same models
that validate the request), its success answer from `params.answers`; path ids are UUIDs; dashboard routes
take a bearer token (a Clerk session or an API key) or the `__session` cookie; everything else is public
or verified by its own signature headers.
"""
from __future__ import annotations

import collections
import importlib.metadata
import re
import typing

import pydantic
from aiohttp import web

from outreach.http import auth, keys, params, validation, wire

PATH = "/api/openapi.json"
TITLE = "Outreach Runtime API"
ERRORS = {
    400: ("BadRequest", "Bad input: malformed JSON, a field that fails its rule, a bad query value"),
    401: ("Unauthorized", "No valid session, API key or signature"),
    404: ("NotFound", "No such resource in this organization (an id that is not a UUID names nothing)"),
    409: ("Conflict", "The resource's state does not allow this now"),
    413: ("PayloadTooLarge", "The body is over the size limit"),
    429: ("RateLimited", "A plan limit or a rate limit; Retry-After says when to try again"),
    502: ("ProviderError", "An external provider failed"),
    503: ("NotConfigured", "A provider or runtime this route needs is not configured; the message names what to set"),
}
SUCCESS_TEXT = {101: "Switching Protocols: the websocket feed", 200: "OK", 201: "Created", 202: "Accepted",
                204: "No Content", 302: "Found: a redirect"}
SECURITY = [{"bearerAuth": []}, {"sessionCookie": []}]
PATH_PARAM = re.compile(r"{(\w+)}")


def build_document(router: web.UrlDispatcher) -> dict:
    components: dict[str, dict] = {"Error": error_schema()}
    operations = list(router_operations(router))
    ids = operation_ids(operations)
    paths: dict[str, dict] = {}
    for method, path, handler in operations:
        paths.setdefault(path, {})[method.lower()] = build_operation(method, path, handler, ids[method, path],
                                                                     components)
    return {
        "openapi": "3.0.3",
        "info": {"title": TITLE, "version": package_version(),
                 "description": "Errors answer `{\"error\": \"...\"}`. Updates accept both PATCH and PUT."},
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items())), "responses": error_responses(),
                       "securitySchemes": security_schemes()},
    }


def router_operations(router: web.UrlDispatcher):
    """(method, path, handler) of every route; the HEAD that aiohttp adds beside each GET is that GET."""
    for route in router.routes():
        if route.method != "HEAD" and route.resource is not None:
            yield route.method, route.resource.canonical, route.handler


def operation_ids(operations: list) -> dict[tuple[str, str], str]:
    """The handler's name; where one handler serves several routes, with the method, and the path if need be."""
    names = collections.Counter(handler.__name__ for _, _, handler in operations)
    methods = collections.Counter((handler.__name__, method) for method, _, handler in operations)
    ids = {}
    for method, path, handler in operations:
        name = handler.__name__
        if names[name] > 1:
            name += "_" + method.lower()
        if methods[handler.__name__, method] > 1:
            name += "_" + re.sub(r"\W+", "_", path).strip("_")
        ids[method, path] = name
    return ids


def build_operation(method: str, path: str, handler, operation_id: str, components: dict) -> dict:
    inputs, answer = params.inputs_of(handler), params.answer_of(handler)
    protected = path.startswith(auth.PROTECTED_PREFIX)
    operation = {"operationId": operation_id, "summary": summary_of(handler), "tags": [tag_of(handler)],
                 "parameters": parameters_of(path, inputs), "security": SECURITY if protected else []}
    body = request_body(inputs, components)
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = {str(answer.status): success_response(answer, components),
                              **error_refs(protected or inputs.headers is not None)}
    if not operation["parameters"]:
        del operation["parameters"]
    return operation


def summary_of(handler) -> str:
    doc = (handler.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else handler.__name__.replace("_", " ").capitalize()


def tag_of(handler) -> str:
    return handler.__module__.rsplit(".", 1)[-1]


def parameters_of(path: str, inputs: params.Inputs) -> list[dict]:
    found = [{"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
             for name in PATH_PARAM.findall(path)]
    for place, model in (("query", inputs.query), ("header", inputs.headers)):
        if model is not None:
            found.extend(model_parameters(place, model))
    return found


def model_parameters(place: str, model: type[validation.Model]) -> list[dict]:
    described = validation.json_schema(model)
    required = set(described.get("required", ()))
    return [parameter(place, name, name in required, dict(rules)) for name, rules in described["properties"].items()]


def parameter(place: str, name: str, required: bool, rules: dict) -> dict:
    described = {"name": name, "in": place, "required": required, "schema": rules}
    description = rules.pop("description", None)
    if description:
        described["description"] = description
    return described


def request_body(inputs: params.Inputs, components: dict) -> dict | None:
    for model, media_type in ((inputs.body, "application/json"), (inputs.form, "application/x-www-form-urlencoded"),
                              (inputs.upload, "multipart/form-data")):
        if model is not None:
            return {"required": True, "content": {media_type: {"schema": component(model, components)}}}
    return None


def success_response(answer: params.Answer, components: dict) -> dict:
    response = {"description": SUCCESS_TEXT.get(answer.status, "Success")}
    if answer.media_type:
        response["content"] = {answer.media_type: {"schema": answer_schema(answer, components)}}
    return response


def answer_schema(answer: params.Answer, components: dict) -> dict:
    """A Reply model (a $ref), a list of one, a JSON Schema as written, or by default any object (or text)."""
    body = answer.body
    if typing.get_origin(body) is list:
        return {"type": "array", "items": component(typing.get_args(body)[0], components)}
    if isinstance(body, type) and issubclass(body, pydantic.BaseModel):
        return component(body, components)
    return body or default_body(answer)


def default_body(answer: params.Answer) -> dict:
    return {"type": "object"} if answer.media_type == "application/json" else {"type": "string"}


def component(model, components: dict) -> dict:
    """A $ref to the model's schema, registered once with the models it nests; two different models may not
    share a name."""
    described = dict(validation.json_schema(model))
    for name, nested in described.pop("$defs", {}).items():
        register(name, nested, components)
    register(model.__name__, described, components)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def register(name: str, described: dict, components: dict) -> None:
    if components.setdefault(name, described) != described:
        raise ValueError(f"two different models are named {name}")


def error_schema() -> dict:
    return {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def error_responses() -> dict:
    return {name: {"description": description,
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for name, description in ERRORS.values()}


def error_refs(authenticated: bool) -> dict:
    return {str(status): {"$ref": f"#/components/responses/{name}"} for status, (name, _) in ERRORS.items()
            if status != 401 or authenticated}


def security_schemes() -> dict:
    return {
        "bearerAuth": {"type": "http", "scheme": "bearer",
                       "description": "A Clerk session JWT, or an API key `tp_live_...`"},
        "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "__session",
                          "description": "The Clerk session cookie"},
    }


def package_version() -> str:
    try:
        return importlib.metadata.version("outreach-runtime")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


async def publish(app: web.Application) -> None:
    """On start-up, once every route is registered."""
    app[keys.OPENAPI] = build_document(app.router)


@params.answers(200, {"type": "object", "description": "this document"})
async def serve_document(request: web.Request) -> web.Response:
    """The OpenAPI 3 document of this API."""
    return wire.json_response(request.app[keys.OPENAPI])


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(PATH, serve_document)
