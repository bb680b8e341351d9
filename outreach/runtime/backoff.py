"""How long to wait before trying again: one rule for provider retries and database reconnects."""
from __future__ import annotations

import random


def backoff_delay(tries: int, rng: random.Random, first: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds before the next try after `tries` failed ones: exponential from `first`, capped at `cap`, with
    jitter (half to all of the step, so callers that failed together do not come back together), and never
    sooner than a `retry_after` the other side asked for."""
    step = min(cap, first * 2 ** min(tries, 32))
    return max(float(retry_after or 0), step * rng.uniform(0.5, 1.0))
