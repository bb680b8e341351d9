"""The live page in headless Chromium against a real server in sandbox: execute, watch the bar reach 100%."""
from __future__ import annotations

import shutil

import pytest
from playwright.async_api import expect

from tests.integration.test_execution import setup_campaign

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    assert CHROMIUM, "Debian's chromium is needed for this test (apt-get install chromium); .ci/run installs it"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        await browser.close()


async def test_live_page_runs_a_campaign_to_100_percent(ray_api, ray_http, pool, browser, tmp_path):
    await setup_campaign(ray_api, pool, 60, settings={"sandbox": {"latencyMs": 5}})
    page = await browser.new_page(viewport={"width": 1000, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(str(ray_http.make_url("/live")))
    await page.fill("#token", ray_api.token)
    await page.click("#signin-button")
    await expect(page.locator("#campaign option")).to_have_count(1, timeout=10_000)
    await expect(page.locator("#campaign")).to_contain_text("60 leads")
    await page.click("#execute")
    await expect(page.locator("#percent")).to_have_text("100%", timeout=60_000)
    await expect(page.locator("#c-processed")).to_have_text("60")
    await expect(page.locator("#feed tr")).to_have_count(60)
    shot = tmp_path / "live.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == []


async def test_live_page_refuses_a_bad_token(ray_http, browser):
    page = await browser.new_page()
    await page.goto(str(ray_http.make_url("/live")))
    await page.fill("#token", "tp_live_" + "0" * 64)
    await page.click("#signin-button")
    await expect(page.locator("#error")).to_contain_text("Unauthorized", timeout=10_000)
    assert await page.is_hidden("#campaigns")


async def test_home_redirects_to_the_live_page(http):
    async with http.get("/", allow_redirects=False) as response:
        assert response.status == 302 and response.headers["Location"] == "/live"
    async with http.get("/live") as response:
        assert response.status == 200 and "Content-Security-Policy" in response.headers
