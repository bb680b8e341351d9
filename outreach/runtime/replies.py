"""Rules for what a lead's answer may change: whether an inbound email's sender is verified."""
from __future__ import annotations

import re

CHECKS = ("spf", "dkim", "dmarc")
RESULT = re.compile(r"\b(spf|dkim|dmarc)=([a-z]+)", re.IGNORECASE)


def auth_results(data: dict) -> dict[str, str]:
    """SPF, DKIM and DMARC results of an inbound email event, where present: fields named after the checks
    (at the top or under `authentication`), or the receiving server's `Authentication-Results` header."""
    found: dict[str, str] = {}
    for source in (data, data.get("authentication")):
        if isinstance(source, dict):
            found.update({check: str(source[check]).lower() for check in CHECKS
                          if isinstance(source.get(check), (str, bool))})
    for header in header_values(data.get("headers"), "authentication-results"):
        for check, result in RESULT.findall(header):
            found.setdefault(check.lower(), result.lower())
    return {check: {"true": "pass", "false": "fail"}.get(result, result) for check, result in found.items()}


def header_values(headers, name: str) -> list[str]:
    """Values of one header from `{name: value}` or `[{name, value}]`, names compared without case."""
    if isinstance(headers, dict):
        pairs = headers.items()
    elif isinstance(headers, list):
        pairs = ((item.get("name"), item.get("value")) for item in headers if isinstance(item, dict))
    else:
        return []
    return [str(value) for key, value in pairs if isinstance(key, str) and key.lower() == name and value]


def sender_verified(results: dict[str, str]) -> bool:
    """Trust the From address unless the results say it may be forged: DMARC decides when present; without
    it, SPF or DKIM must pass when either is given. No results at all: nothing contradicts the sender."""
    if "dmarc" in results:
        return results["dmarc"] == "pass"
    given = [results[check] for check in ("spf", "dkim") if check in results]
    return not given or "pass" in given


MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def thread_ids(data: dict) -> list[str]:
    """The ids an inbound email says it answers (In-Reply-To, References): each Message-ID without its brackets,
    and its part before the @, which is where a provider puts its own email id."""
    found: list[str] = []
    for name in ("in-reply-to", "references"):
        for header in header_values(data.get("headers"), name):
            for message_id in MESSAGE_ID.findall(header):
                found += [message_id, message_id.partition("@")[0]]
    return list(dict.fromkeys(found))


DEFAULT_QUALIFY_SCORE = 0.7


def qualify_threshold(settings) -> float:
    """`settings.qualifyScore` of the campaign (0..1), else 0.7."""
    value = settings.get("qualifyScore") if isinstance(settings, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        return DEFAULT_QUALIFY_SCORE
    return float(value)


def qualifies(score, settings) -> bool:
    """Does the voice agent's score qualify the lead? Scores are compared on 0..1; one above 1 is a
    percentage (the agent may report 0-100)."""
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        return False
    return (score / 100 if score > 1 else score) >= qualify_threshold(settings)
