"""Prometheus metrics for every service, defined in one place.

Why one module: the names, labels and meanings are a contract with whoever
runs the stack (deploy/prometheus's alert rules, deploy/grafana's dashboard,
docs/operations.md's table), so they are declared together and each service
only calls the few functions below from its loop. Every metric a process
never touches stays at zero or absent, which is what a scrape of a service
that does not do that work should show.

`/metrics` and the per-route request counts come from `RequestMetrics`, the
ASGI layer `web.serve` puts in front of every app (a service that serves HTTP
otherwise, like the sentinel, calls `metrics_response()` from its own route).
Values that are states rather than happenings (consumer lag, snapshot age,
audit alerts) are read at scrape time by the callbacks given to `on_scrape`.
Process metrics (CPU, memory, file descriptors, GC) are prometheus_client's
default collectors.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("modelog.metrics")
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

HTTP_REQUESTS = Counter("modelog_http_requests", "HTTP requests answered, by route template and status",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("modelog_http_request_duration_seconds", "time to answer an HTTP request",
                         ["route", "method"], buckets=SECONDS)
COMMAND_SECONDS = Histogram("modelog_command_to_event_seconds",
                            "from the broker receiving a command to its events committed by the promoter",
                            buckets=SECONDS)
DECISIONS = Counter("modelog_decisions", "commands decided, by outcome and (for a refusal) reason",
                    ["outcome", "reason"])
CONSUMER_LAG = Gauge("modelog_consumer_lag_records",
                     "records of committed transactions not yet consumed, per partition",
                     ["consumer", "topic", "partition"])
PROJECTION_LAG = Gauge("modelog_projection_lag_events", "events in the log not yet applied, all partitions held",
                       ["projection"])
WEBHOOK_DELIVERIES = Counter("modelog_webhook_deliveries", "webhook delivery attempts, by outcome", ["outcome"])
WEBHOOK_LAG = Histogram("modelog_webhook_delivery_lag_seconds",
                        "from an event occurring to its webhook delivery succeeding", buckets=SECONDS)
SNAPSHOT_AGE = Gauge("modelog_promoter_snapshot_age_seconds",
                     "age of the newest snapshot this promoter wrote, per partition", ["partition"])
AUDIT_ALERTS = Gauge("modelog_audit_alerts", "alerts the auditor holds: chain breaks and unproven events")
LAST_SEAL = Gauge("modelog_audit_last_seal_timestamp_seconds", "when the newest seal was made (Unix time)")
SEAL_PERIOD = Gauge("modelog_audit_seal_period_seconds", "how often the auditor seals (MODELOG_AUDIT_SEAL_EVERY_S)")

Refresh = Callable[[], Awaitable[None] | None]
_refreshers: dict[str, Refresh] = {}


def on_scrape(name: str, refresh: Refresh) -> None:
    """Run `refresh` before each scrape, to set gauges from the service's state;
    a second one under the same name replaces the first (an app built again)."""
    _refreshers[name] = refresh


async def metrics_response() -> tuple[bytes, str]:
    """The exposition body and its content type, gauges refreshed first; a
    refresher that fails leaves its gauges as they were, not the scrape broken."""
    for refresh in list(_refreshers.values()):
        try:
            result = refresh()
            if result is not None:
                await asyncio.wait_for(result, timeout=3)
        except Exception:
            log.warning("a metrics refresher failed", exc_info=True)
    return generate_latest(), CONTENT_TYPE_LATEST


def consumer_lag(consumer: str, topic: str, last_stable: Callable[[int], int | None],
                 next_offsets: dict[int, int]) -> int:
    """Set lag per partition held (the log's last stable offset less ours, once
    the consumer knows it) and return the total."""
    CONSUMER_LAG.clear()  # partitions given up since the last scrape are not ours to report
    total = 0
    for partition, offset in next_offsets.items():
        end = last_stable(partition)
        if end is not None:
            behind = max(end - offset, 0)
            CONSUMER_LAG.labels(consumer, topic, str(partition)).set(behind)
            total += behind
    return total


def decided(outcomes: Iterable[tuple[str, str]], received_ms: Iterable[int | None]) -> None:
    """A batch committed: its decisions, and each command's time from receipt."""
    for outcome, reason in outcomes:
        DECISIONS.labels(outcome, reason).inc()
    now_ms = time.time() * 1000
    for at in received_ms:
        if at is not None:
            COMMAND_SECONDS.observe(max(now_ms - at, 0) / 1000)


def webhook_attempted(ok: bool, event_time: str | None) -> None:
    WEBHOOK_DELIVERIES.labels("delivered" if ok else "failed").inc()
    if ok and event_time:
        occurred = datetime.fromisoformat(event_time)
        WEBHOOK_LAG.observe(max((datetime.now(timezone.utc) - occurred).total_seconds(), 0))


class RequestMetrics:
    """Counts and times every HTTP request by its route template (never the raw
    path: a label per model name would grow without bound) and answers
    `GET /metrics` itself, ahead of the app and its authentication."""

    def __init__(self, app: ASGIApp):
        self.app = app
        # Each (route, method, status)'s counter and timer, found once: the
        # labels lookup (a lock and a dict of label tuples) cost more than the
        # counting itself on the hot reads. Routes are templates, so few.
        self.children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/metrics" and scope["method"] == "GET":
            body, content_type = await metrics_response()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", content_type.encode())]})
            return await send({"type": "http.response.body", "body": body})
        started, status = time.perf_counter(), 500

        async def send_seen(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, send_seen)
        finally:
            key = (route_template(scope), scope["method"], status)
            if (children := self.children.get(key)) is None:
                route, method, _ = key
                children = self.children[key] = (HTTP_REQUESTS.labels(route, method, str(status)),
                                                 HTTP_SECONDS.labels(route, method))
            requests, seconds = children
            requests.inc()
            seconds.observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's path template; routers fill `scope` in place as they match."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template or scope.get("route_template") or "unmatched"
