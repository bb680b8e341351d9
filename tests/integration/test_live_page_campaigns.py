"""The live page as a self-hoster's whole dashboard, in headless Chromium against a real server on a local Ray:
pick leads (search, select all matching), create a campaign, set its templates and sequence steps, execute,
watch it finish. Only the existing API routes are used."""
from __future__ import annotations

from playwright.async_api import expect

from tests.integration.test_live_page import browser  # noqa: F401 (the fixture)

DASH = "/api/dashboard"


async def add_leads(api, company: str, count: int) -> None:
    for index in range(count):
        reply = await api.post(f"{DASH}/leads", json={"firstName": f"{company.split()[0]}{index}",
                                                      "email": f"{company.split()[0].lower()}{index}@example.com",
                                                      "company": company})
        assert reply.status == 201, reply.body


async def signed_in(browser, http, api):  # noqa: F811
    page = await browser.new_page(viewport={"width": 1100, "height": 1400})
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(str(http.make_url("/live")))
    await page.fill("#token", api.token)
    await page.click("#signin-button")
    await expect(page.locator("#create")).to_be_visible(timeout=10_000)
    return page


async def test_pick_leads_create_a_campaign_write_its_messages_and_run_it(ray_api, ray_http, pool, browser):  # noqa: F811
    await pool.execute("UPDATE organizations SET plan = 'enterprise' WHERE id = $1", ray_api.org_id)
    await add_leads(ray_api, "Acme Dental", 30)
    await add_leads(ray_api, "Globex", 12)
    page = await signed_in(browser, ray_http, ray_api)
    await expect(page.locator("#lead-page")).to_contain_text("42 matching")

    await page.fill("#lead-search", "acme")
    await page.click("#lead-search-button")
    await expect(page.locator("#lead-page")).to_contain_text("30 matching")
    await expect(page.locator("#leads tbody tr")).to_have_count(25)  # one page; the rest are matching too
    await page.click("#select-all")
    await expect(page.locator("#selected-count")).to_have_text("30 selected")
    await page.fill("#new-name", "Acme outreach")
    await page.click("#create-campaign")
    await expect(page.locator("#campaign")).to_contain_text("Acme outreach · draft · 30 leads", timeout=10_000)
    await expect(page.locator("#msg-name")).to_have_text("Acme outreach")
    await expect(page.locator("#selected-count")).to_have_text("0 selected")
    [campaign] = (await ray_api.get(f"{DASH}/campaigns")).body["campaigns"]
    members = (await ray_api.get(f"{DASH}/campaigns/{campaign['id']}/leads")).body
    assert members["total"] == 30 and {lead["company"] for lead in members["leads"]} == {"Acme Dental"}

    await page.click("#execute")  # no template, no OpenRouter: refused before anything changes
    await expect(page.locator("#error")).to_contain_text("The email channel has no message template")

    await page.fill("#tpl-email-subject", "A quick idea for {{company}}")
    await page.fill("#tpl-email-body", "Hi {{firstName}},\nfewer no-shows at {{company}}?")
    await page.click("#add-step")
    await expect(page.locator("#sequence")).to_have_value('[\n  {\n    "channel": "email"\n  }\n]')
    await page.click("#save-messages")
    await expect(page.locator("#save-status")).to_have_text("Saved")
    settings = (await ray_api.get(f"{DASH}/campaigns/{campaign['id']}")).body["settings"]
    assert settings["templates"] == {"email": {"subject": "A quick idea for {{company}}",
                                               "body": "Hi {{firstName}},\nfewer no-shows at {{company}}?"}}
    assert settings["sequence"] == [{"channel": "email"}]

    await page.fill("#sequence", "[{not json")
    await page.click("#save-messages")
    await expect(page.locator("#error")).to_contain_text("The sequence is not valid JSON")
    assert (await ray_api.get(f"{DASH}/campaigns/{campaign['id']}")).body["settings"]["sequence"] == [
        {"channel": "email"}]
    await page.fill("#sequence", "")  # back to one step on the first channel that works
    await page.click("#save-messages")
    await expect(page.locator("#save-status")).to_have_text("Saved")
    assert "sequence" not in (await ray_api.get(f"{DASH}/campaigns/{campaign['id']}")).body["settings"]

    await page.click("#execute")
    await expect(page.locator("#percent")).to_have_text("100%", timeout=60_000)
    await expect(page.locator("#c-processed")).to_have_text("30")
    await expect(page.locator("#feed tr")).to_have_count(30)
    assert page.errors == []


async def test_the_page_reloads_a_campaigns_messages_and_refuses_half_an_email_template(ray_api, ray_http, pool,
                                                                                      browser):  # noqa: F811
    templates = {"email": {"subject": "Hello", "body": "Hi {{firstName}}"}, "telegram": "Hey {{firstName}}"}
    reply = await ray_api.post(f"{DASH}/campaigns", json={"name": "Written", "channels": ["email", "telegram"],
                                                          "settings": {"templates": templates, "callingWindow": None}})
    campaign_id = reply.body["id"]
    page = await signed_in(browser, ray_http, ray_api)
    await expect(page.locator("#tpl-telegram")).to_have_value("Hey {{firstName}}")
    await expect(page.locator("#tpl-email-subject")).to_have_value("Hello")
    await page.fill("#tpl-email-body", "")
    await page.click("#save-messages")
    await expect(page.locator("#error")).to_contain_text("An email template needs both a subject and a body")
    settings = (await ray_api.get(f"{DASH}/campaigns/{campaign_id}")).body["settings"]
    assert settings["templates"] == templates and settings["callingWindow"] is None  # untouched
    await page.fill("#tpl-email-subject", "")
    await page.click("#save-messages")  # an empty email template: the email channel is left to AI drafts
    await expect(page.locator("#save-status")).to_have_text("Saved")
    settings = (await ray_api.get(f"{DASH}/campaigns/{campaign_id}")).body["settings"]
    assert settings["templates"] == {"telegram": "Hey {{firstName}}"} and settings["callingWindow"] is None
    assert page.errors == []
