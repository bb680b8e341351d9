"""Voice routes: the organization's one voice config (voices, language, personality, speed), and pushing
it with the latest script to the voice agent, for this organization only."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, wire
from outreach.http.auth import principal
from outreach.runtime import agent_protocol, errors
from outreach.storage import db, scripts, voice

VOICE_AGENT_NOT_CONFIGURED = "Voice agent is not configured. Set VOICE_AGENT_URL and VOICE_AGENT_SECRET."

# The option sets of the dashboard's voice page and onboarding wizard.
LANGUAGES = ("uk", "en", "uk-en", "de", "pl", "fr", "es")
PERSONALITIES = ("professional", "friendly", "assertive", "empathetic", "casual")
DEFAULT_VOICES = ["olena"]
MIN_SPEED, MAX_SPEED = 0.5, 2.0


def voice_fields(body: dict, *, replacing: bool) -> dict:
    """PUT replaces: absent fields go back to their defaults (speed excepted). PATCH applies the keys given."""
    fields: dict = {}
    if replacing or "selectedVoices" in body:
        fields["selected_voices"] = parse_voices(body.get("selectedVoices"))
        fields["voice_id"] = fields["selected_voices"][0]
    if replacing or "language" in body:
        fields["language"] = parse_option(body.get("language"), LANGUAGES, "language")
    if replacing or "personality" in body:
        fields["personality"] = parse_option(body.get("personality"), PERSONALITIES, "personality")
    if body.get("speed") is not None:
        fields["speed"] = parse_speed(body["speed"])
    return fields


def parse_voices(value) -> list[str]:
    """Voice names in the order chosen; none chosen means the default voice."""
    if value is None or value == []:
        return list(DEFAULT_VOICES)
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise errors.Invalid("selectedVoices must be an array of voice names")
    return list(dict.fromkeys(item.strip() for item in value))


def parse_option(value, allowed: tuple[str, ...], field: str) -> str:
    """A value of the option set; empty or absent means the first (default) option."""
    if value is None or value == "":
        return allowed[0]
    if value not in allowed:
        raise errors.Invalid(f"Invalid {field}. Must be one of: {', '.join(allowed)}")
    return value


def parse_speed(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_SPEED <= value <= MAX_SPEED:
        raise errors.Invalid(f"speed must be a number from {MIN_SPEED} to {MAX_SPEED}")
    return float(value)


async def get_voice(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        row = await voice.get_voice_config(conn, principal(request).org_id)
    return wire.json_response(wire.to_wire(row))


async def replace_voice(request: web.Request) -> web.Response:
    return await save_voice(request, replacing=True)


async def patch_voice(request: web.Request) -> web.Response:
    return await save_voice(request, replacing=False)


async def save_voice(request: web.Request, *, replacing: bool) -> web.Response:
    fields = voice_fields(await params.read_json(request), replacing=replacing)
    async with db.connection(request.app[keys.DB]) as conn:
        row = await voice.save_voice_config(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row))


async def sync_voice(request: web.Request) -> web.Response:
    """Push the org's voice config and most recently updated script to the agent, signed and keyed by org."""
    agent = keys.required(request, keys.VOICE_AGENT, VOICE_AGENT_NOT_CONFIGURED)
    org_id = principal(request).org_id
    async with db.connection(request.app[keys.DB]) as conn:
        config = await voice.get_voice_config(conn, org_id)
        script = next(iter(await scripts.list_scripts(conn, org_id)), None)
    payload = agent_protocol.org_config(org_id, script, config)
    try:
        answer = await agent.push_config(payload)
    except errors.ProviderError as exc:
        raise errors.ProviderError("Failed to sync with voice agent",
                                   details=exc.details.get("details") or exc.message) from exc
    return wire.json_response({"success": True, "synced": payload, "agentResponse": answer})


def add_routes(router: web.UrlDispatcher) -> None:
    base = "/api/dashboard/voice"
    router.add_get(base, get_voice)
    router.add_put(base, replace_voice)
    router.add_patch(base, patch_voice)
    router.add_post(base + "/sync", sync_voice)
