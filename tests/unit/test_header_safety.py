"""Subjects are one header line; the settings of issue 14's limits read from the environment."""
from __future__ import annotations

import pytest

from outreach.runtime import templates
from outreach.runtime.config import Settings
from outreach.runtime.errors import ConfigError


@pytest.mark.parametrize("subject, folded", [
    ("Hi Eve\r\nBcc: all@example.com", "Hi Eve Bcc: all@example.com"),
    ("a\x00b\x07c\x1bd", "a b c d"),
    ("  two  spaces\tand a tab ", "two spaces and a tab"),
    ("line\u2028separator\u2029paragraph\x85next", "line separator paragraph next"),
    ("Zoë's café — ok", "Zoë's café — ok"),
])
def test_a_subject_is_folded_to_one_line(subject, folded):
    assert templates.one_line(subject) == folded


def test_rendered_subjects_with_hostile_lead_fields_stay_one_line():
    rendered = templates.render("Hi {{firstName}} from {{company}}", {"first_name": "Eve\r\nBcc: x", "company": "A\nB"})
    assert templates.one_line(rendered) == "Hi Eve Bcc: x from A B"


def test_limit_settings_from_the_environment():
    defaults = Settings.from_env({})
    assert (defaults.number_release_grace_days, defaults.email_generate_per_minute,
            defaults.number_search_per_minute, defaults.demo_emails_per_day) == (7, 10, 30, 200)
    given = Settings.from_env({"OUTREACH_NUMBER_RELEASE_GRACE_DAYS": "0", "OUTREACH_EMAIL_GENERATE_PER_MINUTE": "3",
                               "OUTREACH_NUMBER_SEARCH_PER_MINUTE": "4", "OUTREACH_DEMO_EMAILS_PER_DAY": "5"})
    assert (given.number_release_grace_days, given.email_generate_per_minute, given.number_search_per_minute,
            given.demo_emails_per_day) == (0, 3, 4, 5)
    for name, value in (("OUTREACH_NUMBER_RELEASE_GRACE_DAYS", "-1"), ("OUTREACH_EMAIL_GENERATE_PER_MINUTE", "0"),
                        ("OUTREACH_NUMBER_SEARCH_PER_MINUTE", "x")):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})
