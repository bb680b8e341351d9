"""The unsubscribe link of campaign emails (/u/{token}): GET asks, POST suppresses; forged links change nothing."""
from __future__ import annotations

from outreach.runtime import optout

SECRET = "test-secret"  # conftest's settings.secret_key


async def visit(http, method: str, token: str, **kwargs):
    async with http.request(method, f"/u/{token}", **kwargs) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def suppressed(pool) -> list[tuple]:
    return [tuple(row) for row in await pool.fetch("SELECT org_id, type, value, source FROM suppressions")]


async def test_get_asks_and_post_unsubscribes_once(http, api, pool):
    token = optout.unsubscribe_token(SECRET, api.org_id, "Ann@Example.com")
    status, kind, page = await visit(http, "GET", token)
    assert status == 200 and kind.startswith("text/html")
    assert "ann@example.com" in page and "acme" in page and "<form method=\"post\"" in page
    assert await suppressed(pool) == []  # a link scanner's GET changes nothing
    # The mailbox's one-click request (RFC 8058), then a person clicking again: the same result.
    for _ in range(2):
        status, _, body = await visit(http, "POST", token, data="List-Unsubscribe=One-Click",
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and '"success":true' in body.replace(" ", "")
    assert await suppressed(pool) == [(api.org_id, "email", "ann@example.com", "unsubscribe")]
    listed = (await api.get("/api/dashboard/suppressions")).body["suppressions"]
    assert [(row["value"], row["source"]) for row in listed] == [("ann@example.com", "unsubscribe")]


async def test_forged_or_altered_tokens_are_refused_and_change_nothing(http, api, other, pool):
    token = optout.unsubscribe_token(SECRET, api.org_id, "ann@example.com")
    payload, mac = token.split(".")
    forged = [
        optout.unsubscribe_token("not-our-secret", api.org_id, "ann@example.com"),
        optout.b64(f"{api.org_id}:bob@example.com".encode()) + "." + mac,  # another address under Ann's signature
        optout.b64(f"{other.org_id}:ann@example.com".encode()) + "." + mac,  # another org
        payload + "." + mac[::-1], payload, "garbage",
    ]
    for candidate in forged:
        for method in ("GET", "POST"):
            status, _, body = await visit(http, method, candidate)
            assert (status, body) == (400, '{"error":"Invalid or altered unsubscribe link"}'), (candidate, method)
    assert await suppressed(pool) == []


async def test_a_link_of_an_organization_that_is_gone_is_refused(http, pool):
    token = optout.unsubscribe_token(SECRET, "00000000-0000-4000-8000-000000000000", "ann@example.com")
    status, _, _ = await visit(http, "POST", token)
    assert status == 400 and await suppressed(pool) == []


async def test_every_campaign_email_carries_a_working_one_click_unsubscribe(http, api, pool, resend, settings):
    """Through the real Resend adapter (to the local fake), as a campaign run sends: the link in the header
    unsubscribes exactly the address it was sent to."""
    import dataclasses
    import urllib.parse

    from outreach.actors import senders
    from outreach.actors.dispatchers import EmailDispatcher
    from outreach.providers.resend import ResendEmail
    from outreach.runtime.ports import SendJob

    client = ResendEmail(resend.api_key, resend.url(), rate_per_second=1000, timeout=2)
    public = dataclasses.replace(settings, public_url="https://outreach.example.com")
    dispatcher = EmailDispatcher(client, "Acme <sales@acme.test>", "replies@acme.test",
                                 senders.unsubscribe_links(public, "replies@acme.test"))
    lead = {"id": "5f0e7b1a-8f0e-4c65-9c55-2f1c1b1e1a01", "email": "Ann@Example.com"}
    try:
        result = await dispatcher.dispatch(SendJob("c1", str(api.org_id), lead, "email", "c1:l1:email", "Hi", "Hello"))
    finally:
        await client.close()
    assert result.ok
    headers = resend.sent[0]["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link, mailto = [part.strip(" <>") for part in headers["List-Unsubscribe"].split(",")]
    assert mailto == "mailto:replies@acme.test?subject=unsubscribe"
    assert link.startswith("https://outreach.example.com/u/")
    status, _, _ = await visit(http, "POST", urllib.parse.urlsplit(link).path.removeprefix("/u/"),
                               data="List-Unsubscribe=One-Click")
    assert status == 200 and await suppressed(pool) == [(api.org_id, "email", "ann@example.com", "unsubscribe")]
