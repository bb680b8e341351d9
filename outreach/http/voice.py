"""Voice routes: the organization's one voice config (voices, language, personality, speed), and pushing
it with the latest script to the voice agent, for this organization only."""
from __future__ import annotations

from aiohttp import web

from outreach.http import keys, params, schema, wire
from outreach.http.auth import principal
from outreach.runtime import agent_protocol, errors
from outreach.storage import db, scripts, voice

VOICE_AGENT_NOT_CONFIGURED = "Voice agent is not configured. Set VOICE_AGENT_URL and VOICE_AGENT_SECRET."

# The option sets of the dashboard's voice page and onboarding wizard.
LANGUAGES = ("uk", "en", "uk-en", "de", "pl", "fr", "es")
PERSONALITIES = ("professional", "friendly", "assertive", "empathetic", "casual")
DEFAULT_VOICES = ["olena"]
MIN_SPEED, MAX_SPEED = 0.5, 2.0


VOICES_MESSAGE = "selectedVoices must be an array of voice names"


def voice_model(name: str, *, partial: bool) -> schema.Model:
    """PUT replaces: absent fields go back to their defaults (speed excepted). PATCH applies the keys given."""
    return schema.Model(name, [
        # Voice names in the order chosen; none chosen means the default voice.
        schema.Field("selectedVoices", schema.Array(schema.Text(strip=True, min_length=1), distinct=True),
                     empty=lambda value: value is None or value == [], default=DEFAULT_VOICES, message=VOICES_MESSAGE),
        # A value of the option set; empty or absent means the first (default) option.
        option_field("language", LANGUAGES),
        option_field("personality", PERSONALITIES),
        schema.Field("speed", schema.Number(minimum=MIN_SPEED, maximum=MAX_SPEED), default=schema.OMIT,
                     message=f"speed must be a number from {MIN_SPEED} to {MAX_SPEED}"),
    ], partial=partial)


def option_field(name: str, allowed: tuple[str, ...]) -> schema.Field:
    return schema.Field(name, schema.Text(enum=allowed), empty=schema.blank, default=allowed[0],
                        message=f"Invalid {name}. Must be one of: {', '.join(allowed)}")


VOICE_REPLACE = voice_model("VoiceReplace", partial=False)
VOICE_PATCH = voice_model("VoicePatch", partial=True)
VOICE_CONFIG = schema.reply("VoiceConfig", {
    "id": schema.Uuid(), "orgId": schema.Uuid(), "voiceId": schema.Text(), "voiceName": schema.Text(),
    "selectedVoices": schema.Array(schema.Text()), "language": schema.Text(), "personality": schema.Text(),
    "speed": schema.Number(), "isDefault": schema.Boolean(), "createdAt": schema.DateTime(),
}, ("voiceName",))


def voice_fields(values: dict) -> dict:
    """The agent's voice is the first one chosen."""
    if "selected_voices" in values:
        values["voice_id"] = values["selected_voices"][0]
    return values


@params.answers(200, VOICE_CONFIG)
async def get_voice(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        row = await voice.get_voice_config(conn, principal(request).org_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=VOICE_REPLACE)
@params.answers(200, VOICE_CONFIG)
async def replace_voice(request: web.Request) -> web.Response:
    return await save_voice(request)


@params.accepts(body=VOICE_PATCH)
@params.answers(200, VOICE_CONFIG)
async def patch_voice(request: web.Request) -> web.Response:
    return await save_voice(request)


async def save_voice(request: web.Request) -> web.Response:
    fields = voice_fields(await params.body(request))
    async with db.connection(request.app[keys.DB]) as conn:
        row = await voice.save_voice_config(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row))


@params.answers(200, schema.reply("VoiceSynced", {"success": schema.Boolean(), "synced": schema.Object(),
                                                  "agentResponse": schema.Object()}))
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
