"""Out of the box: the plan of organizations that pay for none, and the rule that a campaign's messages can be
written before it runs."""
from __future__ import annotations

import pytest

from outreach.runtime import errors, policy
from outreach.runtime.config import Settings
from outreach.runtime.errors import ConfigError
from outreach.runtime.models import PlanLimits

STRIPE = {"STRIPE_SECRET_KEY": "sk_test_1"}
LIQPAY = {"LIQPAY_PUBLIC_KEY": "sandbox_pub", "LIQPAY_PRIVATE_KEY": "sandbox_priv"}


def test_without_billing_organizations_are_self_hosted_and_not_limited():
    table = Settings.from_env({}).plan_limits
    assert Settings.from_env({}).default_plan == policy.SELF_HOSTED
    assert policy.plan_in_effect("free", table) == policy.SELF_HOSTED
    assert policy.limits_for("free", table) == policy.NO_LIMITS
    assert policy.wire_plan_limits(policy.SELF_HOSTED, table) == {"minutes": None, "telegram": None, "emails": None}


@pytest.mark.parametrize("billing", [STRIPE, LIQPAY])
def test_with_billing_unpaid_organizations_start_on_free(billing):
    settings = Settings.from_env(billing)
    assert settings.default_plan == "free"
    assert policy.limits_for("free", settings.plan_limits) == PlanLimits(0, 0, 0, numbers=0, leads=1000)
    assert policy.wire_plan_limits("free", settings.plan_limits) == {"minutes": 0, "telegram": 0, "emails": 0}


@pytest.mark.parametrize("env", [{}, STRIPE, {"OUTREACH_DEFAULT_PLAN": "free"}, {"OUTREACH_DEFAULT_PLAN": "growth"}])
def test_a_paid_plan_stays_in_effect_whatever_the_configuration(env):
    table = Settings.from_env(env).plan_limits
    for plan in policy.PAID_PLANS:
        assert policy.plan_in_effect(plan, table) == plan
        assert policy.limits_for(plan, table) == policy.DEFAULT_PLAN_LIMITS[policy.Plan(plan)]


def test_the_default_plan_can_be_named():
    growth = Settings.from_env({"OUTREACH_DEFAULT_PLAN": "growth"})
    assert growth.default_plan == "growth"
    assert policy.limits_for("free", growth.plan_limits).emails == 2000
    assert Settings.from_env({**STRIPE, "OUTREACH_DEFAULT_PLAN": "self-hosted"}).default_plan == policy.SELF_HOSTED
    with pytest.raises(ConfigError, match="OUTREACH_DEFAULT_PLAN must be one of self-hosted, free, starter"):
        Settings.from_env({"OUTREACH_DEFAULT_PLAN": "platinum"})


def test_plan_limit_overrides_still_apply_to_the_default_plan():
    table = Settings.from_env({**STRIPE, "OUTREACH_PLAN_LIMITS": '{"free": {"emails": 20}}'}).plan_limits
    assert policy.limits_for("free", table).emails == 20
    assert policy.limits_for("free").emails == 0  # no table: the defaults, unpaid on free


def campaign(channels, priority=None, settings=None) -> dict:
    return {"channels": channels, "channel_priority": priority or channels, "settings": settings or {}}


def test_a_text_channel_without_a_template_names_the_channel_and_both_fixes():
    with pytest.raises(errors.Invalid) as refused:
        policy.check_messages_written(campaign(["email", "voice"]), drafts_on=False)
    assert refused.value.message == (
        "The email channel has no message template: set settings.templates.email (subject and body), "
        "or configure OpenRouter (OPENROUTER_API_KEY) for AI drafts.")
    with pytest.raises(errors.Invalid, match="The telegram and email channels have no message template"):
        policy.check_messages_written(campaign(["telegram", "email"]), drafts_on=False)


def test_templates_drafts_and_unused_channels_let_a_campaign_run():
    written = {"templates": {"telegram": "Hi {{firstName}}", "email": {"subject": "Hello", "body": "Hi"}}}
    policy.check_messages_written(campaign(["email", "telegram", "voice"], settings=written), drafts_on=False)
    policy.check_messages_written(campaign(["email", "telegram"]), drafts_on=True)
    policy.check_messages_written(campaign(["voice"]), drafts_on=False)
    policy.check_messages_written(campaign([]), drafts_on=False)
    # enabled but not in channelPriority: never used, so not needed
    policy.check_messages_written(campaign(["email", "voice"], priority=["voice"]), drafts_on=False)
    assert policy.channels_without_template(
        campaign(["email"], settings={"templates": {"email": {"subject": " ", "body": "x"}}})) == ["email"]


def test_each_step_of_a_sequence_needs_its_messages():
    steps = [{"channel": "telegram", "templates": {"telegram": "Hi"}},
             {"channel": "email", "delay": {"days": 2}}]
    assert policy.channels_without_template(campaign(["telegram", "email"], settings={"sequence": steps})) == ["email"]
    steps[1]["templates"] = {"email": {"subject": "Again", "body": "Hi again"}}
    assert policy.channels_without_template(campaign(["telegram", "email"], settings={"sequence": steps})) == []
