"""Every HTTP request is counted by its route template, method and status, and
timed by route and method, however often the same ones come again (each
route's counter and timer are found once and kept)."""

import asyncio

from prometheus_client import REGISTRY

from modelog_platform.metrics import RequestMetrics

ROUTE = "/v1/models/{name}/unit-test-route"


def answered_with(status: int):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
    return app


def counted(method: str, status: int) -> float:
    return REGISTRY.get_sample_value("modelog_http_requests_total",
                                     {"route": ROUTE, "method": method, "status": str(status)}) or 0.0


def timed(method: str) -> float:
    return REGISTRY.get_sample_value("modelog_http_request_duration_seconds_count",
                                     {"route": ROUTE, "method": method}) or 0.0


async def ask(app, method: str, times: int) -> None:
    async def receive():
        return {"type": "http.request"}

    async def send(message):
        pass
    for _ in range(times):
        await app({"type": "http", "path": "/v1/models/m/unit-test-route", "method": method,
                   "route_template": ROUTE}, receive, send)


def test_each_route_method_and_status_is_counted_and_timed_every_time():
    before = {(m, s): counted(m, s) for m in ("GET", "POST") for s in (200, 404)}
    timed_before = {m: timed(m) for m in ("GET", "POST")}
    found, missing = RequestMetrics(answered_with(200)), RequestMetrics(answered_with(404))
    asyncio.run(ask(found, "GET", 3))
    asyncio.run(ask(missing, "GET", 2))
    asyncio.run(ask(found, "POST", 1))
    asyncio.run(ask(found, "GET", 2))
    assert {k: counted(*k) - v for k, v in before.items()} == {
        ("GET", 200): 5, ("GET", 404): 2, ("POST", 200): 1, ("POST", 404): 0}
    assert {m: timed(m) - v for m, v in timed_before.items()} == {"GET": 7, "POST": 1}
