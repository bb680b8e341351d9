"""The voice agent protocol: request signatures, what we tell the agent, and the TwiML that connects a call to it.

Signatures are the same in both directions (our requests to the agent, its end-of-call webhook to
us): `X-Outreach-Timestamp` is the Unix time in seconds and `X-Outreach-Signature` the hex
HMAC-SHA256 of "<timestamp>.<raw body>" under VOICE_AGENT_SECRET. Signing the timestamp with the
body lets the receiver refuse a captured request replayed later, outside the tolerance.

The agent keeps one configuration per organization (`org_config`) and one per call (`call_config`,
keyed by our call log id). A call reaches the agent over Twilio's media stream with only ids as
stream parameters: the script never travels in a URL or in TwiML.
"""
from __future__ import annotations

import hashlib
import hmac
from xml.sax.saxutils import quoteattr

TIMESTAMP_HEADER = "X-Outreach-Timestamp"
SIGNATURE_HEADER = "X-Outreach-Signature"
TOLERANCE_SECONDS = 300
DEFAULT_VOICE = {"voice_id": "olena", "voice_name": None, "selected_voices": ["olena"], "language": "uk",
                 "personality": "professional", "speed": 1.0}


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def is_signed(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float,
              tolerance: int = TOLERANCE_SECONDS) -> bool:
    """A signature over this body and timestamp, with the timestamp within `tolerance` of `now`."""
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False  # isdigit alone takes "²" and 5,000-digit numbers, which int() refuses
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def voice_settings(voice: dict | None) -> dict:
    """An org's voice config row (snake_case columns) as the agent reads it; the defaults when it has none."""
    row = {**DEFAULT_VOICE, **{key: value for key, value in (voice or {}).items() if value is not None}}
    return {"voiceId": row["voice_id"], "voiceName": row["voice_name"], "selectedVoices": row["selected_voices"],
            "language": row["language"], "personality": row["personality"], "speed": float(row["speed"])}


def lead_profile(lead: dict | None) -> dict | None:
    """What the agent may say to the lead: names, company, local time zone."""
    if not lead:
        return None
    return {"id": str(lead["id"]), "firstName": lead.get("first_name"), "lastName": lead.get("last_name"),
            "company": lead.get("company"), "timezone": lead.get("timezone")}


def call_config(call: dict, *, script: str | None, objection_handlers, voice: dict | None, lead: dict | None) -> dict:
    """One call's configuration; `call` holds the ids and numbers (call_log_id, org_id, direction,
    campaign_id, to, from)."""
    return {"callLogId": str(call["call_log_id"]), "orgId": str(call["org_id"]), "direction": call["direction"],
            "campaignId": str(call["campaign_id"]) if call.get("campaign_id") else None,
            "to": call["to"], "from": call["from"], "script": script or "",
            "objectionHandlers": list(objection_handlers or []), "voice": voice_settings(voice),
            "lead": lead_profile(lead)}


def org_config(org_id, script: dict | None, voice: dict | None) -> dict:
    """An organization's defaults: its latest script and its voice settings."""
    settings = voice_settings(voice)
    return {"orgId": str(org_id), "script": (script or {}).get("content") or "",
            "objectionHandlers": list((script or {}).get("objection_handlers") or []),
            "voiceId": settings["voiceId"], "language": settings["language"],
            "personality": settings["personality"], "voice": settings}


def stream_parameters(config: dict) -> dict[str, str]:
    """The ids that go with the media stream, so the agent finds the call's configuration."""
    names = ("callLogId", "orgId", "campaignId", "direction")
    lead = config.get("lead") or {}
    parameters = {name: str(config[name]) for name in names if config.get(name)}
    if lead.get("id"):
        parameters["leadId"] = lead["id"]
    return parameters


def stream_twiml(stream_url: str, parameters: dict[str, str]) -> str:
    """TwiML that connects the answered call to the agent's media stream, with the call's ids."""
    tags = "".join(f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>"
                   for name, value in parameters.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url={quoteattr(stream_url)}>'
            f"{tags}</Stream></Connect></Response>")


def hangup_twiml(message: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{escape(message)}</Say><Hangup/></Response>'


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
