"""Pure rules: plan limits, contact requirements, campaign status transitions, input vocabularies."""
from __future__ import annotations

import dataclasses
import json

from outreach.runtime import errors, sequences, templates, windows
from outreach.runtime.models import CampaignStatus, Channel, LeadStatus, Plan, PlanLimits

# "No limit", as enforced: fits the integer usage counters with room to add a batch. The dashboard shows
# any limit of WIRE_UNLIMITED or more as "Unlimited", so the wire says 999999 for it, as the reference did.
UNLIMITED = 2_000_000_000
WIRE_UNLIMITED = 999_999
LIMIT_FIELDS = ("minutes", "telegram", "emails")
QUOTA_FIELDS = ("numbers", "leads")  # held at once, not per month: phone numbers, leads
PAID_PLANS = (Plan.STARTER.value, Plan.GROWTH.value, Plan.ENTERPRISE.value)
INVALID_PLAN = "Invalid plan. Choose starter, growth, or enterprise."
DEFAULT_PLAN_LIMITS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(minutes=0, telegram=0, emails=0, numbers=0, leads=1_000),
    Plan.STARTER: PlanLimits(minutes=500, telegram=100, emails=500, numbers=1, leads=10_000),
    Plan.GROWTH: PlanLimits(minutes=2000, telegram=500, emails=2000, numbers=3, leads=100_000),
    Plan.ENTERPRISE: PlanLimits(minutes=UNLIMITED, telegram=UNLIMITED, emails=UNLIMITED, numbers=UNLIMITED,
                                leads=UNLIMITED),
}
DEFAULT_LIQPAY_AMOUNTS = {"starter": 1650, "growth": 4100, "enterprise": 12300}  # UAH a month
DEFAULT_CHANNELS = [Channel.VOICE.value]
DEFAULT_CHANNEL_PRIORITY = [Channel.TELEGRAM.value, Channel.VOICE.value, Channel.EMAIL.value]
CONTACT_FIELDS = ("first_name", "last_name", "phone", "email", "telegram_username")
LEAD_TEXT_FIELDS = ("first_name", "last_name", "phone", "email", "telegram_username", "company", "timezone")
# The longest text a lead field keeps. Contact fields are indexed, and PostgreSQL refuses an index entry over
# about 2.7 kB: these keep every entry well under it, whatever the characters.
LEAD_TEXT_LIMITS = {"first_name": 200, "last_name": 200, "phone": 64, "email": 320, "telegram_username": 64,
                    "company": 300, "timezone": 64}
CHANNEL_NAMES = tuple(channel.value for channel in Channel)
CHANNEL_CONTACT = {Channel.VOICE: "phone", Channel.TELEGRAM: "telegram_username", Channel.EMAIL: "email"}


# The plan of an organization on a deployment that bills nobody (neither Stripe nor LiqPay configured): not
# limited, its sends still counted. Computed from the configuration, never stored (see plan_in_effect).
SELF_HOSTED = "self-hosted"
DEFAULT_PLAN_CHOICES = (SELF_HOSTED, *(plan.value for plan in Plan))  # what OUTREACH_DEFAULT_PLAN may name
NO_LIMITS = PlanLimits(minutes=UNLIMITED, telegram=UNLIMITED, emails=UNLIMITED, numbers=UNLIMITED, leads=UNLIMITED)


class PlanTable(dict):
    """Settings.plan_limits: the limits of each plan (Plan -> PlanLimits), and `unpaid`, the plan of an
    organization that has paid for none. A plain dict works too: its unpaid plan is `free`."""

    def __init__(self, limits: dict, unpaid: str = Plan.FREE.value):
        super().__init__(limits)
        self.unpaid = unpaid


def plan_in_effect(stored: str | None, table: dict | None = None) -> str:
    """The plan an organization is on: the paid plan it stores, else the deployment's plan for organizations that
    pay for none (stored `free`: never paid, or a subscription that ended).

    Computed at each use, so a change of configuration (billing set up later, OUTREACH_DEFAULT_PLAN) moves the
    organizations that pay nothing and never rewrites a plan someone paid for.
    """
    if stored in PAID_PLANS:
        return stored
    return getattr(table, "unpaid", Plan.FREE.value)


def limits_for(plan: str | None, table: dict | None = None) -> PlanLimits:
    """The limits of the plan in effect for a stored `plan`, from `table` (Settings.plan_limits; the defaults when
    None); an unknown plan is an unpaid one."""
    table = DEFAULT_PLAN_LIMITS if table is None else table
    effective = plan_in_effect(plan, table)
    if effective == SELF_HOSTED:
        return NO_LIMITS
    return table[Plan(effective)]


def wire_plan_limits(plan: str, table: dict | None = None) -> dict:
    """The `limits` of GET /billing/usage for the plan in effect: null for each when it is not limited at all."""
    if plan == SELF_HOSTED:
        return {field: None for field in LIMIT_FIELDS}
    return wire_limits(limits_for(plan, table))


def wire_limits(limits: PlanLimits) -> dict:
    values = dataclasses.asdict(limits)
    return {field: WIRE_UNLIMITED if values[field] >= UNLIMITED else values[field] for field in LIMIT_FIELDS}




def parse_plan_limits(text: str | None) -> dict[Plan, PlanLimits]:
    """OUTREACH_PLAN_LIMITS: JSON like {"free": {"emails": 20}, "enterprise": {"minutes": null}}, laid over
    the defaults field by field; null or "unlimited" means no limit. Raises errors.Invalid saying what is wrong."""
    table = dict(DEFAULT_PLAN_LIMITS)
    if not text:
        return table
    try:
        overrides = json.loads(text)
    except ValueError:
        overrides = None
    if not isinstance(overrides, dict):
        raise errors.Invalid('must be a JSON object such as {"free": {"emails": 20}}')
    for name, values in overrides.items():
        plan = parse_enum(Plan, name, f"unknown plan {name!r} (use {', '.join(plan.value for plan in Plan)})")
        if not isinstance(values, dict) or not set(values) <= set(LIMIT_FIELDS + QUOTA_FIELDS):
            raise errors.Invalid(f"{name} must be an object with some of {', '.join(LIMIT_FIELDS + QUOTA_FIELDS)}")
        table[plan] = dataclasses.replace(table[plan], **{key: limit_value(name, key, value)
                                                          for key, value in values.items()})
    return table


def limit_value(plan: str, field: str, value) -> int:
    if value is None or value == "unlimited":
        return UNLIMITED
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.Invalid(f"{plan}.{field} must be a whole number >= 0, null or \"unlimited\", got {value!r}")
    return min(value, UNLIMITED)


def quota_room(limit: int | None, held: int) -> int | None:
    """How many more an organization may hold under a quota (numbers, leads); None when it has no limit."""
    if limit is None or limit >= UNLIMITED:
        return None
    return max(limit - held, 0)


def too_long_lead_field(lead: dict) -> str | None:
    """The first text field longer than its limit, None when all fit."""
    return next((field for field, limit in LEAD_TEXT_LIMITS.items() if len(lead.get(field) or "") > limit), None)


def has_contact(lead: dict) -> bool:
    """A lead needs a name or a way to reach it; a company alone is not enough."""
    return any(lead.get(field) for field in CONTACT_FIELDS)


def parse_enum(enum_type, value, message: str):
    try:
        return enum_type(value)
    except ValueError:
        raise errors.Invalid(message) from None






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


TEXT_CHANNELS = (Channel.EMAIL.value, Channel.TELEGRAM.value)  # written for the lead: a template or an AI draft


def channels_without_template(campaign: dict) -> list[str]:
    """The text channels the campaign would send on (in some step of its sequence) with no template for them."""
    settings = campaign.get("settings") or {}
    order = ordered_channels(campaign.get("channels") or [], campaign.get("channel_priority") or [])
    missing: list[str] = []
    for step in sequences.steps_of(settings):
        written = sequences.step_settings(settings, step)
        for channel in order if step.channel == sequences.ANY else [step.channel]:
            if channel in TEXT_CHANNELS and channel in order and channel not in missing \
                    and not has_template(written, channel):
                missing.append(channel)
    return missing


def has_template(settings: dict, channel: str) -> bool:
    if channel == Channel.EMAIL.value:
        return templates.email_template(settings) is not None
    return templates.telegram_template(settings) is not None


def check_messages_written(campaign: dict, drafts_on: bool) -> None:
    """Refuse to run a campaign whose messages nobody can write: a text channel with no template, and no AI drafts
    (OpenRouter) to write one. Its leads would otherwise wait on that channel and the run end `paused`."""
    missing = [] if drafts_on else channels_without_template(campaign)
    if missing:
        names = " and ".join(missing)
        fields = " and ".join(f"settings.templates.{channel}" + (" (subject and body)" if channel == "email" else "")
                              for channel in missing)
        raise errors.Invalid(f"The {names} channel{'s have' if len(missing) > 1 else ' has'} no message template: "
                             f"set {fields}, or configure OpenRouter (OPENROUTER_API_KEY) for AI drafts.")


def lead_status_after_contact(current: LeadStatus) -> LeadStatus:
    """The first success marks a lead contacted, never overwriting a later status."""
    return LeadStatus.CONTACTED if current is LeadStatus.NEW else current


# --- Channel choice -------------------------------------------------------------------------------

NO_CONTACT = "No contact information for any configured channel"
LEAD_LEVEL_FAILURES = {"no_answer", "busy", "privacy_restricted", "username_not_found", "bounced", "invalid_recipient",
                       "voicemail", "failed"}


@dataclasses.dataclass(frozen=True)
class Choice:
    """What to do with one lead now: send on `channel`, or end (`skipped`/`failed`), or wait (`deferred`)."""

    channel: str | None = None
    outcome: str | None = None  # "skipped", "failed" or "deferred" when channel is None
    reason: str | None = None


def ordered_channels(channels: list[str], priority: list[str]) -> list[str]:
    """The channels of `channelPriority` that the campaign also enables, in priority order."""
    enabled = set(channels)
    return [channel for channel in dict.fromkeys(priority) if channel in enabled]


def choose_channel(lead: dict, order: list[str], attempted: dict[str, str | None], blocked: dict[str, str],
                   in_window: bool) -> Choice:
    """The first channel in `order` the lead can be reached on now.

    `attempted` maps channels already tried for this lead to their error; `blocked` maps channels
    that cannot send for the moment (plan limit, no account with capacity, not configured) to why.
    A lead that could only be reached on a blocked channel, or by voice outside its calling window,
    is deferred: it stays pending with the reason.
    """
    deferred_reason = None
    reachable = False
    for name in order:
        if not lead.get(CHANNEL_CONTACT[Channel(name)]):
            continue
        reachable = True
        if name in attempted:
            continue
        if name in blocked:
            deferred_reason = deferred_reason or blocked[name]
            continue
        if name == Channel.VOICE.value and not in_window:
            deferred_reason = deferred_reason or "Outside the lead's calling window"
            continue
        return Choice(channel=name)
    if deferred_reason:
        return Choice(outcome="deferred", reason=deferred_reason)
    if not reachable:
        return Choice(outcome="skipped", reason=NO_CONTACT)
    last_error = next(reversed(attempted.values()), None) if attempted else None
    return Choice(outcome="failed", reason=last_error or "Every channel failed")


def calling_window(settings: dict) -> windows.CampaignWindows:
    """The campaign's windows (`settings.sendingWindow`, `callingWindow`, `timezone`), read once per run: its
    `next_send_time(now, lead_timezone, channel)` says when a channel may next reach a lead."""
    return windows.windows_for(settings)


# Windows are their own module; these are the names the rest of the package uses.
next_send_time = windows.next_send_time
validate_windows = windows.validate_windows
