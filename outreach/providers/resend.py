"""Resend: the `EmailSender` port over `POST /emails`, called with aiohttp.

Not the SDK: it is synchronous (requests) and keeps its API key in a module global, which races when
sends run concurrently. The wire format is the same, including the `Idempotency-Key` header: a send
retried with its key (after a timeout, or a crash between send and record) returns the first send's
id and sends nothing (Resend keeps keys for 24 h).

Answers become SendResults. A refused recipient or message is the lead's failure (the campaign tries
the lead's next channel). What passes by itself (5xx, 429 rate limit, a reset connection, a timeout,
an unreachable service) is retried with the same key, with capped exponential backoff and jitter,
honouring `Retry-After` (and holding every send of the account for it), for up to `retry_seconds`;
after that the lead fails with the last error, or ends `unknown` when a try's answer was lost (it may have
been sent). What a person must fix (auth, unverified domain, a
quota) sets `channel_blocked`: the lead stays pending for email and is sent later with the same key.
"""
from __future__ import annotations

import asyncio
import html
import json
import random
import time

import aiohttp

from outreach.runtime.ports import OutboundEmail, SendResult
from outreach.providers.http_common import backoff_delay, retry_after_of

EMAILS_PATH = "/emails"
USER_AGENT = "outreach-runtime"
# Sender problems come back as 4xx too; they concern every email of the account, not this lead.
SENDER_ERRORS = {"invalid_from_address", "invalid_access", "missing_api_key", "invalid_api_key", "restricted_api_key",
                 "invalid_region", "daily_quota_exceeded", "monthly_quota_exceeded", "rate_limit_exceeded",
                 "security_error", "not_found", "method_not_allowed"}
LEAD_STATUSES = (400, 422)
QUOTA_ERRORS = {"daily_quota_exceeded", "monthly_quota_exceeded"}  # 429s that do not pass within a retry budget
POLL_SECONDS = 0.1  # how often a send waiting to retry asks whether it is still wanted
PAUSED = "The campaign was paused before this email was sent"


class RateLimiter:
    """Spaces requests at least 1/rate seconds apart in this process (Resend limits each account per second)."""

    def __init__(self, per_second: float, clock=time.monotonic, sleep=asyncio.sleep):
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.interval = 1 / per_second
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0

    async def wait(self, still_wanted=None) -> float | None:
        """Take the next free slot; returns the seconds waited, or None when `still_wanted()` turned false
        first (no turn: the caller sends nothing). No await before the slot is taken, so concurrent callers
        get distinct slots without a lock."""
        now = self.clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now and not await pause_aware_sleep(slot - now, still_wanted, self.clock, self.sleep):
            return None
        return slot - now

    def set_rate(self, per_second: float) -> None:
        self.interval = 1 / per_second

    def hold(self, seconds: float) -> None:
        """No slot for anyone during the next `seconds` (the provider asked to wait)."""
        self._next = max(self._next, self.clock() + seconds)


class ResendEmail:
    """One per API key: a shared aiohttp session (made inside the running loop) and rate limiter."""

    def __init__(self, api_key: str, base_url: str = "https://api.resend.com", *, rate_per_second: float = 10,
                 timeout: float = 10, session_factory=None, limiter=None, retry_seconds: float = 0,
                 clock=time.monotonic, sleep=asyncio.sleep, rng: random.Random | None = None):
        """`limiter`: anything with `async wait(still_wanted)` and `hold(seconds)`; by default one of this
        process (storage.rate_limits has the one shared by every process, which the runtime and the API
        use). `retry_seconds`: how long transient failures are retried (0: answer the first one, as the
        HTTP routes do; campaigns use RESEND_RETRY_SECONDS)."""
        self.url = base_url.rstrip("/") + EMAILS_PATH
        self.headers = {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}
        self.limiter = limiter or RateLimiter(rate_per_second)
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self.clock, self.sleep, self.rng = clock, sleep, rng or random.Random()
        self.session_factory = session_factory or aiohttp.ClientSession
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send_email(self, email: OutboundEmail, idempotency_key: str, still_wanted=None) -> SendResult:
        """Sent, refused, or failed after `retry_seconds` of transient errors; `not_sent` when the campaign
        stopped wanting it while it waited for a turn or a retry (sent later with the same key)."""
        deadline, tries, unanswered = self.clock() + self.retry_seconds, 0, False
        while True:
            turn = await self.limiter.wait(still_wanted)
            if turn is None or still_wanted is not None and not still_wanted():  # paused while waiting for a turn
                return blocked("not_sent", PAUSED)
            result, transient = await self._post(email, idempotency_key)
            if not transient or not self.retry_seconds:  # no budget (the HTTP routes): the caller decides
                return result
            unanswered = unanswered or result.outcome == "unknown"
            delay = backoff_delay(tries, result.retry_after, self.rng)
            if self.clock() + delay > deadline:
                return gave_up(result, tries, self.retry_seconds, unanswered)
            if result.outcome in ("rate_limited", "unreachable"):
                self.limiter.hold(delay)  # the account or the service, not this email: every send waits
            if not await pause_aware_sleep(delay, still_wanted, self.clock, self.sleep):
                return blocked("not_sent", PAUSED)
            tries += 1

    async def _post(self, email: OutboundEmail, idempotency_key: str) -> tuple[SendResult, bool]:
        """One request: its result, and whether it passes by itself (a 5xx, a rate limit but not a quota,
        a lost answer, an unreachable service), so that trying again later can succeed."""
        headers = {**self.headers, "Idempotency-Key": idempotency_key}
        try:
            async with self._session_now().post(self.url, json=request_body(email), headers=headers,
                                                timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                status, response_headers, text = response.status, response.headers, await response.text()
        except aiohttp.ClientConnectorError as exc:  # no connection was made: nothing can have been sent
            return blocked("unreachable", f"Resend is unreachable: {exc}"), True
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The request may have been accepted before the answer was lost: only its key may send it again.
            return SendResult("unknown", error=f"Resend did not answer ({type(exc).__name__}); "
                                               "the email may have been sent"), True
        return result_of(status, response_headers, text), status >= 500 or status == 429 and not quota(text)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _session_now(self) -> aiohttp.ClientSession:
        """Created on first use inside the running loop, and again if a later call runs in another loop."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session, self._loop = self.session_factory(), loop
        return self._session


def request_body(email: OutboundEmail) -> dict:
    body = {"from": email.sender, "to": [email.to], "subject": email.subject, "html": email_html(email.text),
            "text": email.text}
    if email.reply_to:
        body["reply_to"] = email.reply_to
    if email.tags:
        body["tags"] = [{"name": name, "value": value} for name, value in email.tags]
    if email.headers:
        body["headers"] = dict(email.headers)
    return body


def email_html(text: str) -> str:
    """Plain text to HTML with everything escaped: a lead's name or an AI draft cannot inject markup."""
    return "<br />".join(html.escape(line) for line in text.splitlines())


def result_of(status: int, headers, text: str) -> SendResult:
    payload = load_json(text)
    if 200 <= status < 300:
        email_id = payload.get("id") if isinstance(payload, dict) else None
        return SendResult("sent", provider_id=email_id if isinstance(email_id, str) else None)
    name, message = error_fields(payload, text)
    if status == 409 and name == "invalid_idempotent_request":
        # The key was already used for a send with other content (an AI draft written again after a
        # crash): that first send went out, so this lead has been emailed.
        return SendResult("sent")
    described = f"Resend refused the email ({status} {name}): {message}"
    if status in LEAD_STATUSES and name not in SENDER_ERRORS:
        outcome = "invalid_recipient" if names_recipient(message) else "rejected"
        return SendResult(outcome, error=described)
    outcome = "rate_limited" if status == 429 else "provider_error"
    return blocked(outcome, described, retry_after_of(headers))


def quota(text: str) -> bool:
    """A 429 about the daily or monthly quota: it does not pass within a retry budget."""
    return error_fields(load_json(text), text)[0] in QUOTA_ERRORS


def gave_up(last: SendResult, tries: int, seconds: float, unanswered: bool) -> SendResult:
    """Transient errors for the whole retry budget. When every try was refused (a 5xx or 429 answered, or no
    connection made), nothing went out: the lead fails with the last error. When a try's answer was lost
    (`unanswered`: a timeout or reset after the request was sent), Resend may have accepted it, so the lead
    ends `unknown`: never tried on another channel, its usage never refunded."""
    spent = f"gave up after {tries + 1} tries in {seconds:.0f} s"
    if not unanswered:
        return SendResult("provider_error", error=f"{last.error} ({spent})")
    if last.outcome == "unknown":
        return SendResult("unknown", error=f"{last.error} ({spent})")
    return SendResult("unknown", error=f"{last.error} ({spent}; an earlier try got no answer: the email may have "
                                       "been sent)")


async def pause_aware_sleep(seconds: float, still_wanted, clock, sleep) -> bool:
    """Sleep `seconds`, or less when `still_wanted()` turns false (then False): a paused campaign's send
    gives its lead back promptly instead of sleeping through a backoff."""
    if still_wanted is None:
        await sleep(seconds)
        return True
    end = clock() + seconds
    while (left := end - clock()) > 0:
        if not still_wanted():
            return False
        await sleep(min(left, POLL_SECONDS))
    return still_wanted()


def blocked(outcome: str, error: str, retry_after: int | None = None) -> SendResult:
    return SendResult(outcome, error=error, channel_blocked=True, retry_after=retry_after)


def error_fields(payload, text: str) -> tuple[str, str]:
    """Resend's `{"statusCode", "name", "message"}`; something readable when the body is not that."""
    if isinstance(payload, dict):
        name = str(payload.get("name") or "error")
        message = " ".join(str(payload.get("message") or payload.get("error") or "no details").split())
        return name, message[:300]
    return "error", " ".join(text.split())[:200] or "no details"


def names_recipient(message: str) -> bool:
    lowered = message.lower()
    return "`to`" in lowered or "recipient" in lowered or "to field" in lowered


def load_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None

