"""A sender address belongs to one organization (all of them send through one Resend account)."""
from __future__ import annotations

CHANNELS = "/api/dashboard/channels"


def email_config(from_email: str, reply_to: str | None = None) -> dict:
    config = {"fromEmail": from_email, "fromName": "Sales"}
    if reply_to:
        config["replyTo"] = reply_to
    return {"channel": "email", "config": config}


async def test_another_org_cannot_claim_an_address_in_use(api, other, pool):
    assert (await api.put(CHANNELS, json=email_config("sales@acme.io", "replies@acme.io"))).status == 200
    for body in (email_config("Sales@ACME.io"), email_config("ops@globex.io", "replies@acme.io"),
                 email_config("REPLIES@acme.io")):
        reply = await other.put(CHANNELS, json=body)
        assert reply.status == 409 and reply.body == {"error": "This sender address is used by another organization"}
    assert (await other.get(CHANNELS)).body["configs"] == []
    owners = await pool.fetch("SELECT address, org_id FROM sender_addresses ORDER BY address")
    assert [(row["address"], row["org_id"]) for row in owners] == [("replies@acme.io", api.org_id),
                                                                  ("sales@acme.io", api.org_id)]


async def test_an_org_changing_its_address_frees_the_old_one(api, other):
    assert (await api.put(CHANNELS, json=email_config("sales@acme.io"))).status == 200
    assert (await api.put(CHANNELS, json=email_config("team@acme.io"))).status == 200
    assert (await other.put(CHANNELS, json=email_config("sales@acme.io"))).status == 200
    assert (await api.put(CHANNELS, json=email_config("team@acme.io", "team@acme.io"))).status == 200
