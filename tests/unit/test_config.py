"""Settings come from the environment in one place and refuse what cannot work."""
from __future__ import annotations

import pytest

from outreach.runtime.config import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Settings
from outreach.runtime.errors import ConfigError


def test_defaults_need_no_configuration():
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL and settings.redis_url == DEFAULT_REDIS_URL
    assert not settings.sandbox and not settings.twilio_configured and not settings.stripe_configured


def test_values_are_read():
    settings = Settings.from_env({
        "OUTREACH_SANDBOX": "1", "CLERK_AUTHORIZED_PARTIES": "https://a.io, https://b.io",
        "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "OUTREACH_PORT": "9000",
        "RESEND_API_KEY": "re_placeholder_x",
    })
    assert settings.sandbox and settings.port == 9000 and settings.twilio_configured
    assert settings.clerk_authorized_parties == ("https://a.io", "https://b.io")
    assert not settings.resend_configured


@pytest.mark.parametrize("env, named", [
    ({"OUTREACH_PRODUCTION": "1", "CLERK_JWKS_URL": "http://x"}, "OUTREACH_SECRET_KEY"),
    ({"OUTREACH_PRODUCTION": "1", "OUTREACH_SECRET_KEY": "s"}, "CLERK_JWKS_URL"),
    ({"OUTREACH_PRODUCTION": "1", "OUTREACH_SECRET_KEY": "s", "CLERK_JWKS_URL": "http://x"},
     "CLERK_AUTHORIZED_PARTIES"),
    ({"TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_AUTH_TOKEN"),
    ({"LIQPAY_PRIVATE_KEY": "p"}, "LIQPAY_PUBLIC_KEY"),
    ({"OUTREACH_PORT": "eighty"}, "OUTREACH_PORT"),
    ({"OUTREACH_SANDBOX": "maybe"}, "OUTREACH_SANDBOX"),
    ({"DATABASE_URL": "localhost"}, "DATABASE_URL"),
])
def test_errors_name_the_setting(env, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)
