"""Domain values: str Enums for every enumerated column and the frozen records the core passes around."""
from __future__ import annotations

import dataclasses
import enum


class Plan(str, enum.Enum):
    FREE = "free"
    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"


class CampaignStatus(str, enum.Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class LeadStatus(str, enum.Enum):
    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    CONVERTED = "converted"
    REJECTED = "rejected"


class Channel(str, enum.Enum):
    VOICE = "voice"
    TELEGRAM = "telegram"
    EMAIL = "email"


class LeadState(str, enum.Enum):
    """Execution state of one lead inside one campaign (table campaign_leads)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"


class CallStatus(str, enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    IN_PROGRESS = "in_progress"


class NumberStatus(str, enum.Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    PENDING = "pending"


class TelegramAccountStatus(str, enum.Enum):
    WARMING_UP = "warming_up"
    ACTIVE = "active"
    ASSIGNED = "assigned"
    BANNED = "banned"
    COOLDOWN = "cooldown"


class OrgKind(str, enum.Enum):
    PERSONAL = "personal"  # a Clerk user with no active organization
    CLERK = "clerk"  # a Clerk organization
    LOCAL = "local"  # a self-hosted organization reached with API keys


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the organization every query is scoped to, and the Clerk user if any."""

    org_id: str
    user_id: str | None = None
    email: str | None = None
    via: str = "session"  # "session" or "api_key"
    role: str = "member"  # "admin" or "member" of the organization (http.auth.role_of); a key acts as an admin
    creator: str | None = None  # the Clerk user acting (for a key: who made it); keys made now record it


@dataclasses.dataclass(frozen=True)
class Page:
    number: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.limit


@dataclasses.dataclass(frozen=True)
class PlanLimits:
    minutes: int
    telegram: int
    emails: int
    # Quotas on what an organization holds at once (not monthly): phone numbers, leads. UNLIMITED or None: no limit.
    numbers: int | None = None
    leads: int | None = None
