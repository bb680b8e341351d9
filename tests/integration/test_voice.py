"""Voice config routes over HTTP and PostgreSQL."""
from __future__ import annotations

import asyncio

BASE = "/api/dashboard/voice"
DEFAULTS = {"voiceId": "olena", "voiceName": "Default Ukrainian", "selectedVoices": ["olena"], "language": "uk",
            "personality": "professional", "speed": 1.0, "isDefault": True}


def settings_of(body: dict) -> dict:
    return {key: body[key] for key in DEFAULTS}


async def test_get_creates_the_default_once(api, other, pool):
    first = await api.get(BASE)
    assert first.status == 200 and settings_of(first.body) == DEFAULTS
    assert set(first.body) == {"id", "orgId", "createdAt", *DEFAULTS} and first.body["orgId"] == str(api.org_id)
    assert (await api.get(BASE)).body == first.body
    replies = await asyncio.gather(*(other.get(BASE) for _ in range(8)))
    assert {reply.status for reply in replies} == {200} and len({reply.body["id"] for reply in replies}) == 1
    assert replies[0].body["id"] != first.body["id"]
    assert await pool.fetchval("SELECT count(*) FROM voice_configs") == 2


async def test_put_replaces_and_resets_absent_fields(api, pool):
    reply = await api.put(BASE, json={"selectedVoices": ["nova", " olena "], "language": "uk-en",
                                      "personality": "empathetic", "speed": 1.1})
    assert reply.status == 200
    assert settings_of(reply.body) == {**DEFAULTS, "voiceId": "nova", "selectedVoices": ["nova", "olena"],
                                       "language": "uk-en", "personality": "empathetic", "speed": 1.1}
    assert (await api.get(BASE)).body == reply.body
    reset = await api.put(BASE, json={"selectedVoices": [], "language": "", "personality": None})
    assert reset.body["id"] == reply.body["id"]
    assert settings_of(reset.body) == {**DEFAULTS, "speed": 1.1}
    assert settings_of((await api.put(BASE, json={"speed": 2})).body) == {**DEFAULTS, "speed": 2.0}
    assert await pool.fetchval("SELECT count(*) FROM voice_configs") == 1


async def test_put_creates_when_absent_and_patch_is_partial(api, other):
    created = await api.put(BASE, json={"selectedVoices": ["taras"], "language": "en", "personality": "casual"})
    assert created.status == 200 and created.body["voiceId"] == "taras"
    reply = await api.patch(BASE, json={"personality": "friendly", "speed": 0.5})
    assert settings_of(reply.body) == {**DEFAULTS, "voiceId": "taras", "selectedVoices": ["taras"], "language": "en",
                                       "personality": "friendly", "speed": 0.5}
    assert (await api.patch(BASE, json={})).body == reply.body
    assert settings_of((await other.get(BASE)).body) == DEFAULTS


async def test_bad_input(api, pool):
    before = (await api.put(BASE, json={"selectedVoices": ["nova"], "language": "de", "personality": "assertive",
                                        "speed": 1.5})).body
    languages = "Invalid language. Must be one of: uk, en, uk-en, de, pl, fr, es"
    personalities = "Invalid personality. Must be one of: professional, friendly, assertive, empathetic, casual"
    voices = "selectedVoices must be an array of voice names"
    speed = "speed must be a number from 0.5 to 2.0"
    cases = [
        ({"selectedVoices": "nova"}, voices),
        ({"selectedVoices": ["nova", ""]}, voices),
        ({"selectedVoices": ["  "]}, voices),
        ({"selectedVoices": [1]}, voices),
        ({"selectedVoices": {"a": 1}}, voices),
        ({"language": "xx"}, languages),
        ({"language": "EN"}, languages),
        ({"language": 1}, languages),
        ({"language": ["en"]}, languages),
        ({"personality": "rude"}, personalities),
        ({"personality": {}}, personalities),
        ({"speed": 0.4}, speed),
        ({"speed": 2.01}, speed),
        ({"speed": "1"}, speed),
        ({"speed": True}, speed),
        ({"language": "en", "personality": "friendly", "speed": 9}, speed),
    ]
    for method in ("PUT", "PATCH"):
        for body, message in cases:
            reply = await api.call(method, BASE, json=body)
            assert reply.status == 400 and reply.body == {"error": message}, (method, body, reply.body)
        for raw, message in [(b"{", "Invalid JSON body"), (b"[]", "Request body must be a JSON object"),
                             (b"", "Request body must be a JSON object")]:
            reply = await api.call(method, BASE, raw=raw)
            assert reply.status == 400 and reply.body == {"error": message}, (method, raw, reply.body)
    assert (await api.get(BASE + "?language=en")).body == before
    assert await pool.fetchval("SELECT count(*) FROM voice_configs") == 1
