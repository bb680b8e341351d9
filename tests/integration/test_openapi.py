"""The OpenAPI document: it covers every route of the router, is valid OpenAPI 3, and a schemathesis fuzz
generated from it finds no 5xx on a server wired to every provider (each a local fake), while every
answer it gets matches the response schema the document gives for it."""
from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import json
import pathlib
import re
import time
import uuid

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestClient, TestServer
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from outreach.http import openapi
from outreach.http.app import Deps, build_app
from outreach.providers.liqpay import LiqPay
from outreach.providers.openrouter import OpenRouterDrafter
from outreach.providers.resend import ResendEmail
from outreach.providers.sandbox import SandboxOutcomes, SandboxTelegram
from outreach.providers.stripe import StripeBilling
from outreach.providers.voice_agent import VoiceAgent
from outreach.storage import db, orgs
from tests.factories import insert_call, insert_campaign, insert_lead, insert_number
from tests.fakes.openrouter import FakeOpenRouter, email_completion
from tests.fakes.resend import FakeResend
from tests.fakes.stripe import FakeStripe
from tests.fakes.twilio import FakeTwilio, twilio_port
from tests.fakes.voice_agent import FakeVoiceAgent

PRICES = {"starter": "price_starter_fuzz", "growth": "price_growth_fuzz", "enterprise": "price_enterprise_fuzz"}
PUBLIC_URL = "https://outreach.example.com"
# Per operation: examples that fit the document, then examples that break it.
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 20, schemathesis.GenerationMode.NEGATIVE: 10}
TIME_BUDGET_SECONDS = 300
CHECKS = [not_a_server_error, response_schema_conformance]
# The websocket feed is no request/response route; execute runs campaigns on Ray, which this app does not have.
NOT_FUZZED = {("GET", "/api/dashboard/campaigns/{id}/progress"), ("POST", "/api/dashboard/campaigns/{id}/execute")}
# Paths whose {id} names a row of this kind: half the examples use a real one, so bodies reach the database.
SEEDED = {"/api/dashboard/campaigns/": "campaign", "/api/dashboard/leads/": "lead",
          "/api/dashboard/numbers/": "number", "/api/dashboard/calls/": "call", "/api/dashboard/scripts/": "script"}


@pytest.fixture
async def fakes():
    servers = {"stripe": FakeStripe(prices=tuple(PRICES.values())), "twilio": FakeTwilio(), "agent": FakeVoiceAgent(),
               "resend": FakeResend(), "openrouter": FakeOpenRouter()}
    for server in servers.values():
        await server.start()
    servers["openrouter"].queue(*[email_completion("A quick note", "Hello there") for _ in range(1000)])
    yield servers
    for server in servers.values():
        await server.stop()


@pytest.fixture
async def http(settings, pool, redis, fakes):
    """This module's app has every provider configured, so a 503 "not configured" is a finding too."""
    stripe, twilio, agent, resend, openrouter = (fakes[name] for name in
                                                 ("stripe", "twilio", "agent", "resend", "openrouter"))
    settings = dataclasses.replace(
        settings, public_url=PUBLIC_URL, email_from="Outreach <hello@outreach.example.com>",
        stripe_secret_key=stripe.api_key, stripe_webhook_secret="whsec_fuzz", stripe_base_url=stripe.url(),
        stripe_prices=dict(PRICES), liqpay_public_key="public_fuzz", liqpay_private_key="private_fuzz",
        twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token, twilio_base_url=twilio.url(),
        voice_agent_url=agent.url(), voice_agent_secret=agent.secret, resend_api_key=resend.api_key,
        resend_api_url=resend.url(), resend_webhook_secret="whsec_" + base64.b64encode(b"fuzz-secret").decode(),
        clerk_webhook_secret="whsec_" + base64.b64encode(b"fuzz-clerk").decode(),
    )
    ports = {"stripe": StripeBilling(stripe.api_key, "whsec_fuzz", stripe.url(), max_network_retries=0),
             "liqpay": LiqPay("public_fuzz", "private_fuzz"), "twilio": twilio_port(twilio),
             "voice_agent": VoiceAgent(agent.url(), agent.secret),
             "email": ResendEmail(resend.api_key, resend.url(), rate_per_second=1000, timeout=2),
             "drafter": OpenRouterDrafter(openrouter.api_key, openrouter.url(), timeout=2),
             "demo_telegram": SandboxTelegram(SandboxOutcomes("telegram", mix={"sent": 1.0}))}
    client = TestClient(TestServer(build_app(settings, Deps(pool=pool, redis=redis, **ports)), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()
    for name in ("stripe", "email", "drafter"):
        await ports[name].close()


async def fetch_document(http) -> dict:
    async with http.get(openapi.PATH) as response:
        assert response.status == 200
        return await response.json()


def router_routes(http) -> set[tuple[str, str]]:
    return {(method, path) for method, path, _ in openapi.router_operations(http.server.app.router)}


def documented_routes(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}


async def test_document_covers_every_route_and_is_valid(http):
    document = await fetch_document(http)
    routes = router_routes(http)
    assert documented_routes(document) == routes
    assert len(routes) >= 70
    assert all(method != "HEAD" for method, _ in routes)  # aiohttp's HEAD beside each GET is that GET
    check_structure(document)
    try:
        from openapi_spec_validator import validate
    except ImportError:  # not a dependency: the structural checks above stand alone
        return
    validate(document)


def check_structure(document: dict) -> None:
    """What a validator would catch first: the version, unique operation ids, declared path parameters, a
    response for each operation, and every $ref resolving."""
    assert document["openapi"].startswith("3.0.") and document["info"]["title"]
    operations = [(path, operation) for path, methods in document["paths"].items() for operation in methods.values()]
    ids = [operation["operationId"] for _, operation in operations]
    assert len(ids) == len(set(ids))
    for path, operation in operations:
        declared = {parameter["name"] for parameter in operation.get("parameters", []) if parameter["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path
        assert any(status.startswith("2") or status in ("101", "302") for status in operation["responses"]), path
    for ref in re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(document)):
        target = document
        for part in ref.split("/"):
            target = target[part]


async def test_document_describes_inputs_auth_and_errors(http):
    document = await fetch_document(http)
    paths, schemas = document["paths"], document["components"]["schemas"]
    patch = paths["/api/dashboard/campaigns/{id}"]["patch"]
    assert patch["parameters"] == [{"name": "id", "in": "path", "required": True,
                                    "schema": {"type": "string", "format": "uuid"}}]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CampaignUpdate"}
    assert schemas["CampaignUpdate"]["properties"]["status"]["enum"] == ["draft", "active", "paused", "completed"]
    assert schemas["CampaignCreate"]["required"] == ["name"]
    assert patch["security"] == [{"bearerAuth": []}, {"sessionCookie": []}]
    assert {"200", "400", "401", "404", "409", "413", "429", "502", "503"} <= set(patch["responses"])
    assert paths["/api/dashboard/campaigns"]["post"]["responses"]["201"]["content"]["application/json"] == {
        "schema": {"$ref": "#/components/schemas/Campaign"}}
    query = {parameter["name"]: parameter for parameter in paths["/api/dashboard/leads"]["get"]["parameters"]}
    assert set(query) == {"page", "limit", "status", "search"}
    assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}
    upload = paths["/api/dashboard/leads/import"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert schemas[upload["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]["file"] == {
        "type": "string", "format": "binary",
        "description": "a UTF-8 CSV file whose name ends in .csv, with a header row"}
    for path in ("/api/webhook/stripe", "/api/webhook/twilio/status", "/api/demo/email", "/healthz", openapi.PATH):
        assert next(iter(paths[path].values()))["security"] == []
    twilio = paths["/api/webhook/twilio/status"]["post"]
    assert "application/x-www-form-urlencoded" in twilio["requestBody"]["content"]
    assert {parameter["name"] for parameter in twilio["parameters"]} == {"orgId", "callLogId", "X-Twilio-Signature"}
    assert "401" in twilio["responses"] and "401" not in paths["/api/webhook/liqpay"]["post"]["responses"]
    assert document["components"]["responses"]["BadRequest"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}


def test_handlers_read_input_only_through_declared_models():
    """What the document says a route reads is what it validates: no handler reads a body or a query past its
    models. Exceptions: auth takes a websocket `token`, and Twilio's signature covers the raw form."""
    raw_reads = re.compile(r"request\.query|read_json\(|request\.post\(|request\.json\(|request\.text\(")
    allowed = {"params.py": 4, "auth.py": 1, "twilio_webhook.py": 1}
    for module in pathlib.Path(openapi.__file__).parent.glob("*.py"):
        found = len(raw_reads.findall(module.read_text()))
        assert found == allowed.get(module.name, 0), (module.name, found)


@dataclasses.dataclass
class FuzzReport:
    operations: int = 0
    examples: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    failures: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0


def fuzz(document: dict, base_url: str, token: str, seed_rows) -> FuzzReport:
    """Every operation but NOT_FUZZED, in both generation modes, through CHECKS. Runs in a worker thread
    (schemathesis sends with requests) while the server runs on the test's loop."""
    report, started = FuzzReport(), time.monotonic()
    session = requests.Session()
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in NOT_FUZZED:
            continue
        report.operations += 1
        kind = next((kind for prefix, kind in SEEDED.items() if operation.path.startswith(prefix + "{id}")), None)
        for mode, examples in EXAMPLES.items():
            fixed = {"id": str(seed_rows()[kind])} if kind and mode.is_positive else None
            fuzz_operation(operation, mode, examples, fixed, lambda case: send(case, base_url, token, session, report))
        assert time.monotonic() - started < TIME_BUDGET_SECONDS, f"fuzz over budget at {operation.label}"
    report.seconds = time.monotonic() - started
    return report


def fuzz_operation(operation, mode, examples: int, path_parameters: dict | None, send_case) -> None:
    """`examples` cases, fewer where the operation has fewer (a route without inputs has one; nothing to break)."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @hypothesis.settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                         phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate),
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=strategy)
    def run(case):
        send_case(case)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        assert not mode.is_positive, f"no valid case for {operation.label}"


def send(case, base_url: str, token: str, session: requests.Session, report: FuzzReport) -> None:
    report.examples[case.operation.label] += 1
    try:
        response = case.call(base_url=base_url, session=session, headers={"Authorization": f"Bearer {token}"},
                             timeout=20)
    except requests.RequestException as exc:
        report.failures.append((case.operation.label, "no answer", repr(exc), case.as_curl_command()))
        return
    report.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS)
    except schemathesis.errors.FailureGroup as group:
        found = "; ".join(" ".join(f"{failure.title}: {failure.message}".split())[:300]
                          for failure in group.exceptions)
        report.failures.append((case.operation.label, response.status_code, found, response.text[:300],
                                case.as_curl_command(headers={"Authorization": "Bearer <key>"})))


async def seed_rows(pool, org_id) -> dict[str, uuid.UUID]:
    """One row of each kind a path id can name, made fresh for each operation (a DELETE may have taken the last)."""
    campaign = await insert_campaign(pool, org_id)
    lead = await insert_lead(pool, org_id, first_name="Fuzz", email="fuzz@example.com", campaign_id=campaign["id"])
    script = await pool.fetchrow("INSERT INTO scripts (org_id, name) VALUES ($1, 'Fuzz') RETURNING id", org_id)
    return {"campaign": campaign["id"], "lead": lead["id"], "script": script["id"],
            "number": (await insert_number(pool, org_id))["id"], "call": (await insert_call(pool, org_id))["id"]}


@pytest.mark.timeout(600)
async def test_fuzz_finds_no_server_error(http, api, pool):
    async with db.transaction(pool) as conn:
        await orgs.set_plan(conn, api.org_id, "starter")  # a free plan stops purchases before they reach Twilio
    document = await fetch_document(http)
    loop = asyncio.get_running_loop()

    def seeded() -> dict:
        return asyncio.run_coroutine_threadsafe(seed_rows(pool, api.org_id), loop).result()

    base_url = str(http.make_url("")).rstrip("/")
    report = await asyncio.to_thread(fuzz, document, base_url, api.token, seeded)
    print(f"\nfuzzed {report.operations} operations, {sum(report.examples.values())} examples "
          f"in {report.seconds:.0f} s; statuses {dict(sorted(report.statuses.items()))}")
    assert report.failures == []
    fuzzed = {label for label in report.examples}
    assert len(fuzzed) == report.operations == len(router_routes(http)) - len(NOT_FUZZED)
    assert sum(report.examples.values()) >= 20 * report.operations
