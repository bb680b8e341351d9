"""What every HTTP provider adapter reads and waits the same way."""
from __future__ import annotations

import random

from outreach.runtime import backoff

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


def retry_after_of(headers) -> int | None:
    """Seconds from a `Retry-After` header (a number); None when absent or not a number."""
    value = (headers or {}).get("Retry-After")
    try:
        return max(0, int(float(value))) if value is not None else None
    except ValueError:
        return None


def backoff_delay(tries: int, retry_after: float | None, rng: random.Random) -> float:
    """Provider retries: from half a second, doubling up to 30 s, jittered, honouring Retry-After."""
    return backoff.backoff_delay(tries, rng, BACKOFF_FIRST_SECONDS, BACKOFF_CAP_SECONDS, retry_after)
