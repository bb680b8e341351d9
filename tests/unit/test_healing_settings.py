"""The settings behind self-healing runs: how long email is retried, when a send's answer is late, how long a
campaign's lease lasts. Each read from the environment, each refused when it cannot work."""
from __future__ import annotations

import pytest

from outreach.runtime.config import Settings
from outreach.runtime.errors import ConfigError


def test_the_defaults_are_fifteen_minutes_of_retries_ten_second_answers_and_thirty_second_leases():
    settings = Settings.from_env({})
    assert (settings.resend_retry_seconds, settings.resend_timeout_seconds, settings.campaign_lease_seconds) == \
        (900, 10, 30)


def test_each_is_read_from_the_environment():
    settings = Settings.from_env({"RESEND_RETRY_SECONDS": "60", "RESEND_TIMEOUT_SECONDS": "3",
                                  "OUTREACH_CAMPAIGN_LEASE_SECONDS": "12"})
    assert (settings.resend_retry_seconds, settings.resend_timeout_seconds, settings.campaign_lease_seconds) == \
        (60, 3, 12)
    assert Settings.from_env({"RESEND_RETRY_SECONDS": "0"}).resend_retry_seconds == 0  # fail on the first error


@pytest.mark.parametrize("name, value", [
    ("RESEND_RETRY_SECONDS", "-1"), ("RESEND_RETRY_SECONDS", "forever"), ("RESEND_TIMEOUT_SECONDS", "0"),
    ("OUTREACH_CAMPAIGN_LEASE_SECONDS", "2"), ("OUTREACH_CAMPAIGN_LEASE_SECONDS", "soon"),
])
def test_a_value_that_cannot_work_stops_start_up_naming_the_setting(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
