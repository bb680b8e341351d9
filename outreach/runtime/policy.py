"""Pure rules: plan limits, contact requirements, campaign status transitions, input vocabularies."""
from __future__ import annotations

from outreach.runtime import errors
from outreach.runtime.models import CampaignStatus, Channel, LeadStatus, Plan, PlanLimits

DEFAULT_PLAN_LIMITS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(minutes=0, telegram=0, emails=0),
    Plan.STARTER: PlanLimits(minutes=500, telegram=100, emails=500),
    Plan.GROWTH: PlanLimits(minutes=2000, telegram=500, emails=2000),
    Plan.ENTERPRISE: PlanLimits(minutes=999999, telegram=999999, emails=999999),
}
DEFAULT_CHANNELS = [Channel.VOICE.value]
DEFAULT_CHANNEL_PRIORITY = [Channel.TELEGRAM.value, Channel.VOICE.value, Channel.EMAIL.value]
CONTACT_FIELDS = ("first_name", "last_name", "phone", "email", "telegram_username")
LEAD_TEXT_FIELDS = ("first_name", "last_name", "phone", "email", "telegram_username", "company", "timezone")
CHANNEL_CONTACT = {Channel.VOICE: "phone", Channel.TELEGRAM: "telegram_username", Channel.EMAIL: "email"}


def limits_for(plan: str | None) -> PlanLimits:
    try:
        return DEFAULT_PLAN_LIMITS[Plan(plan)]
    except ValueError:
        return DEFAULT_PLAN_LIMITS[Plan.FREE]


def has_contact(lead: dict) -> bool:
    """A lead needs a name or a way to reach it; a company alone is not enough."""
    return any(lead.get(field) for field in CONTACT_FIELDS)


def parse_enum(enum_type, value, message: str):
    try:
        return enum_type(value)
    except ValueError:
        raise errors.Invalid(message) from None


def parse_channels(value, not_list_message: str, bad_item_message: str) -> list[str]:
    """A list of distinct known channel names, in the order given."""
    if not isinstance(value, list):
        raise errors.Invalid(not_list_message)
    channels: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise errors.Invalid(bad_item_message)
        channel = parse_enum(Channel, item, bad_item_message).value
        if channel not in channels:
            channels.append(channel)
    return channels


def parse_status_filter(enum_type, raw: str | None):
    """`all`, empty or absent means no filter; anything else must be a known value."""
    if raw is None or raw in ("", "all"):
        return None
    allowed = ", ".join(member.value for member in enum_type)
    return parse_enum(enum_type, raw, f"Invalid status filter. Use one of: all, {allowed}").value


def check_start(status: CampaignStatus) -> None:
    if status is CampaignStatus.ACTIVE:
        raise errors.Invalid("Campaign is already active")
    if status is CampaignStatus.COMPLETED:
        raise errors.Invalid("Cannot start a completed campaign")


def check_pause(status: CampaignStatus) -> None:
    if status is not CampaignStatus.ACTIVE:
        raise errors.Invalid("Campaign is not active")


ALLOWED_STATUS_EDITS: dict[CampaignStatus, set[CampaignStatus]] = {
    CampaignStatus.DRAFT: {CampaignStatus.DRAFT, CampaignStatus.PAUSED, CampaignStatus.COMPLETED},
    CampaignStatus.PAUSED: {CampaignStatus.PAUSED, CampaignStatus.DRAFT, CampaignStatus.COMPLETED},
    CampaignStatus.ACTIVE: {CampaignStatus.ACTIVE, CampaignStatus.PAUSED},
    CampaignStatus.COMPLETED: {CampaignStatus.COMPLETED},
}


def check_status_edit(current: CampaignStatus, wanted: CampaignStatus) -> None:
    """PATCH may not activate a campaign (that is `start`) nor reopen a completed one."""
    if wanted not in ALLOWED_STATUS_EDITS[current]:
        hint = " Use start to run it." if wanted is CampaignStatus.ACTIVE else ""
        raise errors.Invalid(f"Cannot change status from {current.value} to {wanted.value}.{hint}")


def lead_status_after_contact(current: LeadStatus) -> LeadStatus:
    """The first success marks a lead contacted, never overwriting a later status."""
    return LeadStatus.CONTACTED if current is LeadStatus.NEW else current
