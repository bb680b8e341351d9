"""Voice routes: the organization's one voice config (voices, language, personality, speed), and pushing
it with the latest script to the voice agent, for this organization only."""
from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from aiohttp import web

from outreach.http import keys, params, validation, wire
from outreach.http.auth import admin_only, principal
from outreach.runtime import agent_protocol, errors
from outreach.storage import db, scripts, voice

VOICE_AGENT_NOT_CONFIGURED = "Voice agent is not configured. Set VOICE_AGENT_URL and VOICE_AGENT_SECRET."

# The option sets of the dashboard's voice page and onboarding wizard.
LANGUAGES = ("uk", "en", "uk-en", "de", "pl", "fr", "es")
PERSONALITIES = ("professional", "friendly", "assertive", "empathetic", "casual")
DEFAULT_VOICES = ["olena"]
MIN_SPEED, MAX_SPEED = 0.5, 2.0


def option(allowed: tuple[str, ...]):
    """A value of the option set; empty or absent means the first (default) option."""
    return Annotated[validation.one_of(allowed), validation.Empty(validation.blank)]


class VoiceReplace(validation.Model):
    """PUT replaces: absent fields go back to their defaults (speed excepted). PATCH applies the keys given."""

    absent_when_none = frozenset({"speed"})
    # Voice names in the order chosen; none chosen means the default voice.
    selected_voices: Annotated[validation.Array(validation.Text(strip=True, min_length=1), distinct=True),
                               validation.Empty(validation.null_or_empty_list), validation.default(DEFAULT_VOICES)]
    language: option(LANGUAGES) = LANGUAGES[0]
    personality: option(PERSONALITIES) = PERSONALITIES[0]
    speed: validation.Number(minimum=MIN_SPEED, maximum=MAX_SPEED) | None = None


class VoicePatch(VoiceReplace):
    partial = True


class VoiceConfig(validation.Reply):
    id: uuid.UUID
    org_id: uuid.UUID
    voice_id: str
    voice_name: str | None
    selected_voices: list[str]
    language: str
    personality: str
    speed: float
    is_default: bool
    created_at: datetime.datetime


class VoiceSynced(validation.Reply):
    success: bool
    synced: dict
    agent_response: dict


def voice_fields(values: dict) -> dict:
    """The agent's voice is the first one chosen."""
    if "selected_voices" in values:
        values["voice_id"] = values["selected_voices"][0]
    return values


@params.answers(200, VoiceConfig)
async def get_voice(request: web.Request) -> web.Response:
    async with db.connection(request.app[keys.DB]) as conn:
        row = await voice.get_voice_config(conn, principal(request).org_id)
    return wire.json_response(wire.to_wire(row))


@params.accepts(body=VoiceReplace)
@params.answers(200, VoiceConfig)
async def replace_voice(request: web.Request) -> web.Response:
    return await save_voice(request)


@params.accepts(body=VoicePatch)
@params.answers(200, VoiceConfig)
async def patch_voice(request: web.Request) -> web.Response:
    return await save_voice(request)


async def save_voice(request: web.Request) -> web.Response:
    fields = voice_fields(await params.body(request))
    async with db.connection(request.app[keys.DB]) as conn:
        row = await voice.save_voice_config(conn, principal(request).org_id, fields)
    return wire.json_response(wire.to_wire(row))


@admin_only
@params.answers(200, VoiceSynced)
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
