"""The one error middleware: project errors to status codes, everything else to a logged 500."""
from __future__ import annotations

import logging
import uuid

from aiohttp import web

from outreach.http import keys, wire
from outreach.runtime import errors

log = logging.getLogger(__name__)

STATUS_BY_ERROR = {
    errors.Invalid: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.RateLimited: 429,
    errors.ProviderError: 502,
    errors.NotConfigured: 503,
}
HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}


def error_response(status: int, message: str, request_id: str, headers: dict | None = None, **extra):
    body = {"error": message, **extra}
    return wire.json_response(body, status=status, headers={"X-Request-Id": request_id, **(headers or {})})


@web.middleware
async def error_middleware(request: web.Request, handler):
    request_id = request.get(keys.REQUEST_ID) or uuid.uuid4().hex  # set by the observing middleware
    try:
        response = await handler(request)
    except errors.ServiceError as exc:
        return service_error_response(request, exc, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = HTTP_MESSAGES.get(exc.status, exc.reason)
        return error_response(exc.status, message, request_id, headers=_allow_header(exc))
    except Exception:
        log.exception("unhandled error request_id=%s %s %s", request_id, request.method, request.path)
        return error_response(500, "Internal server error", request_id)
    if not response.prepared:
        response.headers.setdefault("X-Request-Id", request_id)
    return response


def service_error_response(request: web.Request, exc: errors.ServiceError, request_id: str) -> web.Response:
    status = next((code for kind, code in STATUS_BY_ERROR.items() if isinstance(exc, kind)), 500)
    if status == 500:
        log.error("service error request_id=%s %s %s: %s", request_id, request.method, request.path, exc.message,
                  exc_info=exc)
        return error_response(500, "Internal server error", request_id)
    headers = {}
    if isinstance(exc, errors.RateLimited) and exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(status, exc.message, request_id, headers=headers, **exc.details)


def _allow_header(exc: web.HTTPException) -> dict:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}
