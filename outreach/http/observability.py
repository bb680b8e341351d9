"""Request metrics and structured access logs (request id, org id), and the Prometheus `/metrics` route."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from outreach.http import keys, params
from outreach.storage import counters

access_log = logging.getLogger("outreach.access")
METRICS = web.AppKey("metrics", object)


class HttpMetrics:
    """The app's own registry, so two apps in one process (tests) never share series."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("outreach_http_requests_total", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("outreach_http_request_duration_seconds", "HTTP request latency by route",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def route_of(request: web.Request) -> str:
    """The route template (`/api/dashboard/campaigns/{id}`), never the raw path: ids would explode the series."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe_middleware(request: web.Request, handler):
    request[keys.REQUEST_ID] = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # a redirect (`GET /`) or an error aiohttp raised: the client gets its status
        status = exc.status
        raise
    finally:
        record(request, status, time.perf_counter() - started)


def record(request: web.Request, status: int, seconds: float) -> None:
    metrics: HttpMetrics = request.app[METRICS]
    route = route_of(request)
    metrics.requests.labels(request.method, route, str(status)).inc()
    metrics.latency.labels(request.method, route).observe(seconds)
    principal = request.get(keys.PRINCIPAL)
    access_log.info("%s %s %s", request.method, request.path, status, extra={
        "request_id": request[keys.REQUEST_ID], "org_id": str(principal.org_id) if principal else None,
        "method": request.method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 2)})


@params.answers(200, media_type="text/plain")
async def serve_metrics(request: web.Request) -> web.Response:
    families = await runtime_families(request.app)
    body = generate_latest(request.app[METRICS].registry) + generate_latest(StaticCollector(families))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def runtime_families(app: web.Application) -> list:
    """Series counted by other processes (campaign and account actors), read from Redis at scrape time."""
    totals = await counters.read_all(app[keys.REDIS])
    leads = CounterMetricFamily("outreach_leads_processed", "Leads that reached an outcome, by channel and outcome",
                                labels=["channel", "outcome"])
    errors = CounterMetricFamily("outreach_provider_errors", "Provider errors by channel", labels=["channel"])
    sends = CounterMetricFamily("outreach_telegram_sends", "Messages sent by Telegram accounts")
    floods = CounterMetricFamily("outreach_telegram_flood_waits", "FloodWait answers received by Telegram accounts")
    for parts, value in sorted(totals.items()):
        if parts[0] == "leads" and len(parts) == 3:
            leads.add_metric([parts[1], parts[2]], value)
        elif parts[0] == "provider_errors" and len(parts) == 2:
            errors.add_metric([parts[1]], value)
    sends.add_metric([], totals.get(("telegram_sends",), 0))
    floods.add_metric([], totals.get(("telegram_flood_waits",), 0))
    return [leads, errors, sends, floods, await actors_alive(app)]


async def actors_alive(app: web.Application) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily("outreach_actors_alive", "Named actors alive in the Ray cluster, by kind",
                              labels=["kind"])
    runtime = app.get(keys.RUNTIME)
    if runtime is not None:
        for kind, count in (await asyncio.to_thread(runtime.actor_counts)).items():
            gauge.add_metric([kind], count)
    return gauge


class StaticCollector:
    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return iter(self.families)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/metrics", serve_metrics)
