"""Twilio: phone numbers (search, buy, release) and outbound calls, through the official SDK's async client.

Every operation builds its client inside the running loop and closes it. With `base_url` set (tests,
an egress proxy) every *.twilio.com request goes to that host instead. SDK errors leave this module
as runtime errors:

- `errors.Invalid`: Twilio refused the request itself (HTTP 400 or 404: a malformed number, a country
  without inventory, a number no longer available). Nothing was created.
- `errors.ProviderError` with `details["status"]` the HTTP status: Twilio answered with an error
  about the account or itself (401, 403, 429, 5xx). Nothing was created.
- `errors.ProviderError` with `details["status"] = None`: the request failed in transit (timeout,
  broken connection): it may or may not have reached Twilio.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import urllib.parse

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from outreach.runtime import errors

REQUEST_TIMEOUT = 15
SEARCH_LIMIT = 20
RING_SECONDS = 30
REFUSED_STATUSES = (400, 404)
# Refusals about our own From number: every call from that line would fail the same way.
SENDER_CODES = {21210, 21212}
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


class RoutedHttpClient(AsyncTwilioHttpClient):
    """The SDK's async HTTP client with a request timeout, sending *.twilio.com requests to `base_url` if set."""

    def __init__(self, base_url: str | None = None, timeout: float = REQUEST_TIMEOUT):
        super().__init__()
        self.base = urllib.parse.urlsplit(base_url.rstrip("/")) if base_url else None
        self.request_timeout = timeout

    async def request(self, method: str, url: str, **kwargs):
        # The SDK passes timeout=None, which aiohttp reads as "no timeout at all".
        kwargs["timeout"] = kwargs.get("timeout") or self.request_timeout
        auth = kwargs.pop("auth", None)
        if auth is not None:  # as a header: aiohttp deprecates its BasicAuth helper
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": basic_authorization(*auth)}
        return await super().request(method, self.route(url), **kwargs)

    def route(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if self.base is None or not (parts.hostname or "").endswith("twilio.com"):
            return url
        return urllib.parse.urlunsplit((self.base.scheme, self.base.netloc, self.base.path + parts.path,
                                        parts.query, ""))


def basic_authorization(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


class Twilio:
    """The platform's Twilio account: numbers it owns and the calls it places."""

    def __init__(self, account_sid: str, auth_token: str, base_url: str | None = None):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = base_url

    @contextlib.asynccontextmanager
    async def client(self):
        http = RoutedHttpClient(self.base_url)
        try:
            yield Client(self.account_sid, self.auth_token, http_client=http)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise answered_error(exc) from exc
        except TwilioException as exc:
            raise page_error(exc) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise errors.ProviderError(f"Twilio request failed: {exc or type(exc).__name__}", status=None) from exc
        finally:
            await http.close()

    async def search_numbers(self, country: str, area_code: str | None) -> list[dict]:
        """Local numbers for sale in `country` (ISO 3166 alpha-2), voice-capable, optionally in one area code."""
        area = {"area_code": area_code} if area_code else {}
        async with self.client() as client:
            found = await client.available_phone_numbers(country).local.list_async(
                voice_enabled=True, limit=SEARCH_LIMIT, **area)
        return [available_number(item) for item in found]

    async def buy_number(self, phone_number: str, voice_url: str, status_callback: str) -> dict:
        """Buy the number for the account, its incoming calls and call statuses pointed at our webhooks."""
        async with self.client() as client:
            bought = await client.incoming_phone_numbers.create_async(
                phone_number=phone_number, voice_url=voice_url, voice_method="POST",
                status_callback=status_callback, status_callback_method="POST")
        return {"sid": bought.sid, "phone_number": bought.phone_number}

    async def release_number(self, sid: str) -> bool:
        """Give the number back to Twilio; False when the account no longer has it."""
        try:
            async with self.client() as client:
                return await client.incoming_phone_numbers(sid).delete_async()
        except errors.Invalid as exc:
            if exc.details.get("status") == 404:
                return False
            raise

    async def find_number(self, phone_number: str) -> str | None:
        """The sid of the account's number with this E.164 value, if it has one."""
        async with self.client() as client:
            owned = await client.incoming_phone_numbers.list_async(phone_number=phone_number, limit=1)
        return owned[0].sid if owned else None

    async def place_call(self, to: str, from_number: str, twiml: str, status_callback: str,
                         time_limit: int) -> str:
        """Dial `to` from one of our numbers, run `twiml` once answered; returns the Call SID.

        Answering machines are detected so a voicemail is not counted as a conversation; every status
        change is posted to `status_callback`.
        """
        async with self.client() as client:
            call = await client.calls.create_async(
                to=to, from_=from_number, twiml=twiml, status_callback=status_callback,
                status_callback_event=CALL_EVENTS, status_callback_method="POST", machine_detection="Enable",
                timeout=RING_SECONDS, time_limit=time_limit)
        return call.sid


def answered_error(exc: TwilioRestException | TwilioServiceException) -> errors.ServiceError:
    if isinstance(exc, TwilioServiceException):
        message = exc.detail or exc.title
    else:
        prefix, sep, rest = (exc.msg or "").partition(": ")
        message = rest if sep and prefix.startswith("Unable to") else (exc.msg or "Twilio error")
    return classified(message, exc.status, exc.code)


def classified(message: str, status: int, code) -> errors.ServiceError:
    """Twilio's own message, as Invalid when Twilio refused the request, else as ProviderError."""
    if status in REFUSED_STATUSES and code not in SENDER_CODES:
        return errors.Invalid(message, status=status, code=code)
    return errors.ProviderError(message, status=status, code=code)


def page_error(exc: TwilioException) -> errors.ServiceError:
    """A list request's error: the SDK raises it plain, with Twilio's response as its second argument."""
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    if status is None:
        return errors.ProviderError(f"Twilio request failed: {exc}", status=None)
    try:
        body = json.loads(response.text)
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return classified(body.get("message") or f"HTTP {status}", status, body.get("code"))


def available_number(item) -> dict:
    """The dashboard's shape. Twilio names capabilities `voice`, `SMS`, `MMS`: read them in any case."""
    capabilities = {str(key).lower(): bool(value) for key, value in (item.capabilities or {}).items()}
    return {"phoneNumber": item.phone_number, "friendlyName": item.friendly_name, "locality": item.locality,
            "region": item.region,
            "capabilities": {name: capabilities.get(name, False) for name in ("voice", "sms", "mms")}}

