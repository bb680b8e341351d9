"""Pure rules: no database, no network."""
from __future__ import annotations

import pytest

from outreach.runtime import errors, policy
from outreach.runtime.models import CampaignStatus, LeadStatus


def test_limits_for_known_and_unknown_plans():
    assert policy.limits_for("starter").emails == 500
    assert policy.limits_for("growth").telegram == 500
    assert policy.limits_for("mystery") == policy.limits_for("free")
    assert policy.limits_for(None).minutes == 0


@pytest.mark.parametrize("lead, expected", [
    ({"company": "Acme"}, False),
    ({"first_name": "A"}, True),
    ({"telegram_username": "x"}, True),
    ({"email": None, "phone": ""}, False),
])
def test_has_contact(lead, expected):
    assert policy.has_contact(lead) is expected


def test_start_and_pause_rules():
    policy.check_start(CampaignStatus.DRAFT)
    policy.check_start(CampaignStatus.PAUSED)
    with pytest.raises(errors.Invalid, match="already active"):
        policy.check_start(CampaignStatus.ACTIVE)
    with pytest.raises(errors.Invalid, match="completed"):
        policy.check_start(CampaignStatus.COMPLETED)
    policy.check_pause(CampaignStatus.ACTIVE)
    with pytest.raises(errors.Invalid, match="not active"):
        policy.check_pause(CampaignStatus.DRAFT)


@pytest.mark.parametrize("current, wanted, allowed", [
    (CampaignStatus.DRAFT, CampaignStatus.ACTIVE, False),
    (CampaignStatus.DRAFT, CampaignStatus.COMPLETED, True),
    (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, True),
    (CampaignStatus.ACTIVE, CampaignStatus.DRAFT, False),
    (CampaignStatus.COMPLETED, CampaignStatus.DRAFT, False),
    (CampaignStatus.PAUSED, CampaignStatus.DRAFT, True),
])
def test_status_edits(current, wanted, allowed):
    if allowed:
        policy.check_status_edit(current, wanted)
    else:
        with pytest.raises(errors.Invalid):
            policy.check_status_edit(current, wanted)


def test_contact_never_overwrites_a_later_status():
    assert policy.lead_status_after_contact(LeadStatus.NEW) is LeadStatus.CONTACTED
    for later in (LeadStatus.QUALIFIED, LeadStatus.CONVERTED, LeadStatus.REJECTED, LeadStatus.CONTACTED):
        assert policy.lead_status_after_contact(later) is later
