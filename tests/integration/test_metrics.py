"""Prometheus metrics and the structured access log."""
from __future__ import annotations

import json
import logging

from outreach.logs import JsonFormatter
from tests.integration.test_execution import setup_campaign


def sample(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}}" if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in metrics")


async def test_metrics_count_requests_by_route_and_leads_by_outcome(ray_api, ray_http, pool):
    campaign_id = await setup_campaign(ray_api, pool, 20, settings={"sandbox": {"outcomes": {"email": {"sent": 1}}}})
    assert (await ray_api.post(f"/api/dashboard/campaigns/{campaign_id}/execute")).status == 200
    await ray_api.get(f"/api/dashboard/campaigns/{campaign_id}")
    async with ray_http.get("/metrics") as response:
        assert response.status == 200 and response.content_type == "text/plain"
        text = await response.text()
    assert sample(text, "outreach_http_requests_total", method="GET", route="/api/dashboard/campaigns/{id}",
                  status="200") == 1
    assert sample(text, "outreach_leads_processed_total", channel="email", outcome="sent") == 20
    assert sample(text, "outreach_actors_alive", kind="campaign") >= 1
    assert "outreach_http_request_duration_seconds_bucket" in text
    assert sample(text, "outreach_telegram_sends_total") >= 0


def test_json_log_lines_carry_request_and_org_ids():
    record = logging.LogRecord("outreach.access", logging.INFO, __file__, 1, "GET %s %s", ("/x", 200), None)
    record.request_id, record.org_id, record.status = "abc", "org-1", 200
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /x 200" and line["level"] == "info"
    assert line["request_id"] == "abc" and line["org_id"] == "org-1" and line["status"] == 200 and "ts" in line
