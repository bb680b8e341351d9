"""What a campaign sends is safe whatever a lead row holds (rows written before input was checked): a subject is
one header line, and only an E.164 number is ever dialled."""
from __future__ import annotations

import datetime

from outreach.actors.campaign_runner import CampaignRunner, RunnerOptions
from outreach.actors.dispatchers import EmailDispatcher, VoiceDispatcher
from outreach.runtime.ports import SendResult
from outreach.storage.run_store import PgRunStore, RedisEventSink
from tests.factories import insert_lead



def noon_somewhere() -> str:
    """A time zone where it is about noon now: calls go out inside any calling window, whenever the test runs."""
    offset = 12 - datetime.datetime.now(datetime.timezone.utc).hour  # -11 ... 12
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"  # Etc/GMT-3 is three hours ahead of UTC


class RecordingProvider:
    """Email and voice at the provider edge: records what would have gone out."""

    def __init__(self):
        self.emails, self.calls = [], []

    async def send_email(self, email, idempotency_key, still_wanted=None) -> SendResult:
        self.emails.append(email)
        return SendResult("sent", provider_id=idempotency_key)

    async def place_call(self, call) -> SendResult:
        self.calls.append(call)
        return SendResult("sent", provider_id="CA" + call.lead_id)


async def test_legacy_lead_fields_neither_forge_headers_nor_reach_twilio_as_sip(api, pool, redis):
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", api.org_id)
    settings = {"templates": {"email": {"subject": "Hi {{firstName}}\r\nX-Extra: 1", "body": "Hello"}}}
    campaign = (await api.post("/api/dashboard/campaigns", json={
        "name": "safe", "channels": ["voice", "email"], "channelPriority": ["voice", "email"],
        "settings": settings})).body
    assert "id" in campaign, campaign
    eve = await insert_lead(pool, api.org_id, first_name="Eve\r\nBcc: all@example.com", email="eve@example.com")
    zone = noon_somewhere()
    sip = await insert_lead(pool, api.org_id, first_name="Sip", phone="sip:agent@evil.example", email="s@example.com",
                            timezone=zone)
    client = await insert_lead(pool, api.org_id, first_name="Client", phone="client:alice", timezone=zone)
    good = await insert_lead(pool, api.org_id, first_name="Good", phone="+14155550101", timezone=zone)
    ids = [str(lead["id"]) for lead in (eve, sip, client, good)]
    assert (await api.post(f"/api/dashboard/campaigns/{campaign['id']}/leads", json={"leadIds": ids})).status == 200
    await api.post(f"/api/dashboard/campaigns/{campaign['id']}/start")
    provider = RecordingProvider()
    dispatchers = {"email": EmailDispatcher(provider, "Sales <s@example.com>"), "voice": VoiceDispatcher(provider)}
    runner = CampaignRunner(campaign["id"], PgRunStore(pool, campaign["id"]), RedisEventSink(redis, campaign["id"]),
                            dispatchers, RunnerOptions())
    summary = await runner.run()
    assert [call.to for call in provider.calls] == ["+14155550101"]
    assert sorted(email.subject for email in provider.emails) == ["Hi Eve Bcc: all@example.com X-Extra: 1",
                                                                  "Hi Sip X-Extra: 1"]
    by_name = {result["leadName"]: result for result in summary["results"]}
    assert by_name["Client"]["status"] == "failed"
    attempts = await pool.fetch("SELECT channel::text, outcome, error FROM attempts WHERE lead_id = $1 "
                                "ORDER BY started_at", sip["id"])
    assert [(row["channel"], row["outcome"]) for row in attempts] == [("voice", "invalid_recipient"), ("email", "sent")]
    assert attempts[0]["error"] == "The lead's phone is not an E.164 number"
