"""The one retry rule: exponential, capped, jittered, never sooner than the other side asked."""
from __future__ import annotations

import random

from outreach.providers.http_common import backoff_delay as provider_backoff
from outreach.runtime.backoff import backoff_delay


def test_the_delay_doubles_from_the_first_step_up_to_the_cap_with_jitter_of_half_to_all_of_the_step():
    rng = random.Random(1)
    for tries, step in [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (60, 30.0)]:
        delays = [backoff_delay(tries, rng, first=0.5, cap=30.0) for _ in range(200)]
        assert all(step / 2 <= delay <= step for delay in delays), tries
        assert max(delays) - min(delays) > step / 4, "no jitter"


def test_retry_after_is_a_floor():
    rng = random.Random(2)
    assert backoff_delay(0, rng, first=0.5, cap=30.0, retry_after=7) == 7
    assert 16 <= backoff_delay(6, rng, first=0.5, cap=30.0, retry_after=1) <= 30


def test_provider_retries_start_at_half_a_second_and_stop_growing_at_thirty():
    rng = random.Random(3)
    assert 0.25 <= provider_backoff(0, None, rng) <= 0.5
    assert 15 <= provider_backoff(20, None, rng) <= 30
    assert provider_backoff(0, 3, rng) == 3
