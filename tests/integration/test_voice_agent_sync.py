"""POST /voice/sync: each organization's voice config and latest script, pushed to the agent signed and keyed
by organization (the original overwrote one global config for every tenant: bug B2)."""
from __future__ import annotations

import dataclasses

import pytest
from aiohttp.test_utils import TestClient, TestServer

from outreach.http.app import Deps, build_app
from outreach.providers.voice_agent import VoiceAgent
from tests.conftest import Api, tenant_on
from tests.fakes.server import LocalServer

SYNC = "/api/dashboard/voice/sync"



@pytest.fixture
async def agent_client(settings, pool, redis):
    """Factory: a tenant of an app whose voice agent is `port`."""
    clients = []

    async def make(port, name: str) -> Api:
        app_settings = dataclasses.replace(settings, voice_agent_url=port.base_url, voice_agent_secret=port.secret)
        client = TestClient(TestServer(build_app(app_settings, Deps(pool=pool, redis=redis, voice_agent=port)),
                                       host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return await tenant_on(client, pool, name)

    yield make
    for client in clients:
        await client.close()


async def test_each_org_syncs_its_own_config(agent_client, fake_agent):
    port = VoiceAgent(fake_agent.url(), fake_agent.secret)
    acme, globex = await agent_client(port, "acme"), await agent_client(port, "globex")
    await acme.put("/api/dashboard/voice", json={"selectedVoices": ["sofia", "olena"], "language": "en",
                                                 "personality": "friendly"})
    await acme.post("/api/dashboard/scripts", json={"name": "old", "content": "old pitch"})
    newest = (await acme.post("/api/dashboard/scripts", json={"name": "new", "content": "acme pitch",
                                                              "objectionHandlers": ["price", "timing"]})).body
    await globex.post("/api/dashboard/scripts", json={"name": "g", "content": "globex pitch"})

    reply = await acme.post(SYNC)
    assert reply.status == 200, reply.body
    synced = reply.body["synced"]
    assert (synced["orgId"], synced["script"], synced["objectionHandlers"], synced["voiceId"], synced["language"],
            synced["personality"]) == (str(acme.org_id), "acme pitch", ["price", "timing"], "sofia", "en", "friendly")
    assert synced["voice"]["selectedVoices"] == ["sofia", "olena"]
    assert reply.body["success"] is True and reply.body["agentResponse"] == {"success": True, "config": synced}
    assert (await globex.post(SYNC)).status == 200
    assert fake_agent.configs[str(acme.org_id)]["script"] == "acme pitch"  # not overwritten by globex
    assert fake_agent.configs[str(globex.org_id)]["script"] == "globex pitch"
    assert fake_agent.configs[str(globex.org_id)]["voiceId"] == "olena"  # the defaults: globex set none
    # the script edited last is the one pushed
    await acme.put(f"/api/dashboard/scripts/{newest['id']}", json={"content": "acme pitch v2"})
    assert (await acme.post(SYNC)).body["synced"]["script"] == "acme pitch v2"


async def test_an_org_without_scripts_syncs_an_empty_script(agent_client, fake_agent):
    api = await agent_client(VoiceAgent(fake_agent.url(), fake_agent.secret), "acme")
    synced = (await api.post(SYNC)).body["synced"]
    assert (synced["script"], synced["objectionHandlers"], synced["language"], synced["personality"]) == (
        "", [], "uk", "professional")


async def test_agent_failures_are_502_with_details(agent_client, fake_agent):
    api = await agent_client(VoiceAgent(fake_agent.url(), fake_agent.secret), "acme")
    fake_agent.refuse_next(500, "config store is read-only")
    reply = await api.post(SYNC)
    assert (reply.status, reply.body) == (502, {"error": "Failed to sync with voice agent",
                                                "details": "config store is read-only"})
    wrong_secret = await agent_client(VoiceAgent(fake_agent.url(), "not-the-agents-secret"), "globex")
    reply = await wrong_secret.post(SYNC)
    assert (reply.status, reply.body["error"]) == (502, "Failed to sync with voice agent")
    assert "invalid signature" in reply.body["details"]
    assert fake_agent.configs == {}


async def test_an_unreachable_agent_is_a_502(agent_client):
    closed = await LocalServer().start()
    url = closed.url()
    await closed.stop()  # nothing listens on that port any more
    api = await agent_client(VoiceAgent(url, "secret", timeout=5), "acme")
    reply = await api.post(SYNC)
    assert reply.status == 502 and reply.body["error"] == "Failed to sync with voice agent"
    assert reply.body["details"]


async def test_not_configured_is_a_503_naming_the_settings(api):
    reply = await api.post(SYNC)
    assert reply.status == 503 and "VOICE_AGENT_URL" in reply.body["error"]
