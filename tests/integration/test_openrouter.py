"""The real OpenRouter drafter against a local server speaking OpenRouter's wire format."""
from __future__ import annotations

import socket

import aiohttp
import pytest

from outreach.runtime import errors
from outreach.providers.openrouter import OpenRouterDrafter
from tests.fakes.openrouter import (FakeOpenRouter, Reply, completion, email_completion, error_in_200, error_reply,
                                    slow)

SCRIPT = ("Introduce Nimbus, the scheduling assistant that cuts no-shows for dental clinics by a third. "
          "Ask for a fifteen minute call next week.")
HANDLER = "If they say it is too expensive, explain that it pays for itself after two saved appointments."
LEAD = {"id": "lead-1", "first_name": "Olena", "last_name": "Koval", "company": "Smile Dental",
        "email": "olena@smile.example", "telegram_username": "olenak", "phone": "+380501112233"}
CAMPAIGN = {"settings": {}, "script": SCRIPT, "objection_handlers": [HANDLER],
            "voice": {"language": "uk", "personality": "friendly"}}
EMAIL_BODY = ("Hi Olena,\n\nClinics like Smile Dental lose hours to no-shows.\n\n"
              "Could we talk next week?\n\nBest regards")
TELEGRAM_TEXT = "Hi Olena! Nimbus helps clinics like Smile Dental cut no-shows. Open to a quick call next week?"


@pytest.fixture
async def fake():
    server = FakeOpenRouter()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def drafter(fake):
    client = OpenRouterDrafter(fake.api_key, fake.url(), timeout=2)
    yield client
    await client.close()


def system_and_user(request: dict) -> tuple[str, str]:
    messages = request["json"]["messages"]
    assert [message["role"] for message in messages] == ["system", "user"]
    return messages[0]["content"], messages[1]["content"]


async def test_email_draft_sends_the_script_as_instructions_and_returns_the_email(fake, drafter):
    fake.queue(email_completion("Fewer no-shows at Smile Dental", EMAIL_BODY))
    subject, body = await drafter.draft("email", LEAD, CAMPAIGN)
    assert (subject, body) == ("Fewer no-shows at Smile Dental", EMAIL_BODY)
    request = fake.requests[0]
    assert request["headers"]["Authorization"] == "Bearer sk-or-test"
    assert request["json"]["model"] == "google/gemini-2.0-flash-001"
    assert request["json"]["response_format"] == {"type": "json_object"}
    system, user = system_and_user(request)
    assert SCRIPT in system and f"1. {HANDLER}" in system
    assert "Ukrainian" in system and "friendly" in system and "email" in system
    assert "Olena" in user and "Koval" in user and "Smile Dental" in user and '"subject"' in user
    assert SCRIPT not in user and "olena@smile.example" not in user
    assert SCRIPT not in body and HANDLER not in body


async def test_telegram_draft_is_plain_text_without_subject(fake, drafter):
    fake.queue(completion(TELEGRAM_TEXT))
    subject, text = await drafter.draft("telegram", LEAD, CAMPAIGN)
    assert (subject, text) == (None, TELEGRAM_TEXT)
    body = fake.requests[0]["json"]
    assert body["model"] == "google/gemini-2.0-flash-001" and "response_format" not in body
    system, user = system_and_user(fake.requests[0])
    assert SCRIPT in system and "Telegram" in system and "no markdown" in system
    assert "Olena" in user and "2-3 sentences" in user and SCRIPT not in user
    assert SCRIPT not in text


async def test_the_configured_model_is_sent(fake):
    client = OpenRouterDrafter(fake.api_key, fake.url() + "/", model="openai/gpt-4o-mini")
    try:
        fake.queue(completion(TELEGRAM_TEXT))
        await client.draft("telegram", LEAD, CAMPAIGN)
    finally:
        await client.close()
    assert fake.requests[0]["json"]["model"] == "openai/gpt-4o-mini"


async def test_fenced_json_email_is_parsed(fake, drafter):
    fake.queue(email_completion("Fewer no-shows", EMAIL_BODY, fenced=True))
    assert await drafter.draft("email", LEAD, CAMPAIGN) == ("Fewer no-shows", EMAIL_BODY)


async def test_email_without_subject_gets_the_template_subject(fake, drafter):
    fake.queue(email_completion(None, EMAIL_BODY), email_completion("", EMAIL_BODY))
    assert await drafter.draft("email", LEAD, CAMPAIGN) == ("Пропозиція для Smile Dental", EMAIL_BODY)
    english = {**CAMPAIGN, "voice": None}
    assert await drafter.draft("email", LEAD, english) == ("A quick note for Smile Dental", EMAIL_BODY)


@pytest.mark.parametrize("reply, pattern, status, retry_after", [
    (error_in_200(502, "Upstream provider failed mid-generation"), r"OpenRouter error 502: Upstream", 502, None),
    (error_reply(402, "Insufficient credits"), r"out of credits \(402\): Insufficient credits", 402, None),
    (error_reply(429, "Rate limit exceeded", retry_after=7), r"rate limit \(429\).*retry after 7 s", 429, 7),
    (error_reply(503, "No provider available", retry_after=30), r"error 503: No provider.*retry after 30 s", 503, 30),
    (error_reply(400, "Invalid model"), r"OpenRouter error 400: Invalid model", 400, None),
    (Reply(status=502, body="<html>Bad gateway</html>"), r"OpenRouter error 502: <html>Bad gateway", 502, None),
])
async def test_provider_errors_are_raised_with_status_and_retry_after(fake, drafter, reply, pattern, status,
                                                                      retry_after):
    fake.queue(reply)
    with pytest.raises(errors.ProviderError, match=pattern) as caught:
        await drafter.draft("email", LEAD, CAMPAIGN)
    assert caught.value.details == {"status": status, "retry_after": retry_after}


async def test_error_without_code_in_a_200_answer(fake, drafter):
    fake.queue(Reply(body={"error": {"message": "Generation aborted"}}))
    with pytest.raises(errors.ProviderError, match="failed during generation: Generation aborted"):
        await drafter.draft("telegram", LEAD, CAMPAIGN)


async def test_wrong_key_is_a_provider_error_naming_the_setting(fake):
    client = OpenRouterDrafter("sk-or-wrong", fake.url())
    try:
        with pytest.raises(errors.ProviderError, match="OPENROUTER_API_KEY"):
            await client.draft("telegram", LEAD, CAMPAIGN)
    finally:
        await client.close()


async def test_slow_answer_times_out(fake):
    client = OpenRouterDrafter(fake.api_key, fake.url(), timeout=0.2)
    fake.queue(slow(completion(TELEGRAM_TEXT), 0.6))
    try:
        with pytest.raises(errors.ProviderError, match=r"did not answer within 0.2 s"):
            await client.draft("telegram", LEAD, CAMPAIGN)
    finally:
        await client.close()


async def test_unreachable_service_is_a_provider_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenRouterDrafter("sk-or-test", f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(errors.ProviderError, match="unreachable"):
            await client.draft("telegram", LEAD, CAMPAIGN)
    finally:
        await client.close()


@pytest.mark.parametrize("channel, reply, pattern", [
    ("telegram", completion(""), "empty answer"),
    ("telegram", completion(None), "empty answer"),
    ("telegram", completion("```\n\n```"), "empty answer"),
    ("email", Reply(body={"id": "gen-3", "choices": []}), "empty answer"),
    ("email", completion("Sure! Here is a friendly email for Olena."), "not the JSON"),
    ("email", completion('{"subject": "Hi"}'), "no body"),
    ("email", Reply(body=["not", "a", "completion"]), "not a completion"),
    ("telegram", completion("Hi [Your Name] here from [Company Name]!"), "placeholder"),
])
async def test_unusable_answers_are_refused(fake, drafter, channel, reply, pattern):
    fake.queue(reply)
    with pytest.raises(errors.ProviderError, match=pattern):
        await drafter.draft(channel, LEAD, CAMPAIGN)


@pytest.mark.parametrize("channel, answer", [
    ("telegram", f"Hi Olena! {SCRIPT}"),
    ("telegram", f"Hi Olena, {HANDLER.lower()}"),
    ("email", '{"subject": "Hello", "body": "You are an AI sales agent writing a first outreach message."}'),
    ("email", '{"subject": "Hello", "body": "Sales script (private instructions: ...) Introduce Nimbus"}'),
])
async def test_an_answer_echoing_the_instructions_is_never_returned(fake, drafter, channel, answer):
    fake.queue(completion(answer))
    with pytest.raises(errors.ProviderError, match="repeats the campaign's instructions"):
        await drafter.draft(channel, LEAD, CAMPAIGN)


async def test_one_session_is_reused_and_recreated_after_close(fake):
    made = []

    def factory():
        made.append(aiohttp.ClientSession())
        return made[-1]

    client = OpenRouterDrafter(fake.api_key, fake.url(), session_factory=factory)
    fake.queue(completion(TELEGRAM_TEXT), completion(TELEGRAM_TEXT), completion(TELEGRAM_TEXT))
    await client.draft("telegram", LEAD, CAMPAIGN)
    await client.draft("telegram", LEAD, CAMPAIGN)
    assert len(made) == 1
    await client.close()
    assert made[0].closed
    await client.draft("telegram", LEAD, CAMPAIGN)
    await client.close()
    assert len(made) == 2 and made[1].closed
