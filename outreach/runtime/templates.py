"""Messages written for a lead: per-campaign templates with {{firstName}}-style fields."""
from __future__ import annotations

import re

FIELD = re.compile(r"\{\{\s*(firstName|lastName|company|fullName)\s*\}\}")
# Control characters (CR, LF, NUL, ...) and Unicode line separators: in a header they would end the line.
HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def lead_values(lead: dict) -> dict[str, str]:
    first, last = lead.get("first_name") or "", lead.get("last_name") or ""
    return {"firstName": first or "there", "lastName": last, "company": lead.get("company") or "your team",
            "fullName": f"{first} {last}".strip() or "there"}


def render(template: str, lead: dict) -> str:
    values = lead_values(lead)
    return FIELD.sub(lambda match: values[match.group(1)], template).strip()


def one_line(text: str) -> str:
    """A header value (an email subject) on one line: each run of whitespace or control characters is one space,
    so no lead field or drafted text can end the header and add another."""
    return " ".join(HEADER_BREAKS.sub(" ", text).split())


def campaign_templates(settings: dict) -> dict:
    templates = settings.get("templates") if isinstance(settings, dict) else None
    return templates if isinstance(templates, dict) else {}


def telegram_template(settings: dict) -> str | None:
    value = campaign_templates(settings).get("telegram")
    return value if isinstance(value, str) and value.strip() else None


def email_template(settings: dict) -> tuple[str, str] | None:
    value = campaign_templates(settings).get("email")
    if isinstance(value, dict) and isinstance(value.get("subject"), str) and isinstance(value.get("body"), str):
        if value["subject"].strip() and value["body"].strip():
            return value["subject"], value["body"]
    return None


def lead_name(lead: dict) -> str:
    return f"{lead.get('first_name') or ''} {lead.get('last_name') or ''}".strip() or "Unknown"
