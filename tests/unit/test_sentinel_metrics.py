"""The sentinel's /metrics: served by its own Faust app (no engine is reached
to build it, so the app is asked in-process), with the platform's process
metrics and the sentinel's counters, the same numbers /v1/status shows; and
what a sentinel counts (signals summed, dropped by reason, its requests'
answers) is what the metrics say (sentinel/metrics.py)."""

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sentinel.app import create_app
from sentinel.metrics import StatusCollector
from sentinel.settings import SentinelSettings
from tests.unit.builders import T0
from tests.unit.test_sentinel_core import book_with_a_canary, raw, sentinel


@pytest.fixture
async def sentinel_http(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELOG_HOME", str(tmp_path / "home"))  # its keys and Faust's directory
    app = create_app(SentinelSettings(kafka_security_protocol="PLAINTEXT"))
    async with TestClient(TestServer(app.web.web_app)) as client:
        yield client


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, its labels) -> value, from Prometheus's text format."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_the_sentinel_serves_metrics_with_its_counters_and_the_platforms_without_a_token(sentinel_http):
    response = await sentinel_http.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    scraped = samples(await response.text())
    status = await (await sentinel_http.get("/v1/status")).json()

    assert ("process_resident_memory_bytes", ()) in scraped  # the platform's, as every service's
    assert scraped[("modelog_sentinel_events_folded_total", ())] == status["events_folded"]
    assert scraped[("modelog_sentinel_windows", ())] == status["windows"]
    assert scraped[("modelog_sentinel_watched_windows", ())] == status["watched"]
    assert scraped[("modelog_sentinel_unsettled_requests", ())] == status["unsettled"]
    for reason in ("malformed", "unknown_model", "too_old"):
        assert scraped[("modelog_sentinel_dropped_signals_total", (("reason", reason),))] == 0
    assert scraped[("modelog_sentinel_answers_total", (("action", "rollback"), ("answer", "refused")))] == 0


def test_what_the_sentinel_counted_is_what_its_metrics_say():
    book = book_with_a_canary()
    s, _, _ = sentinel(book)
    at = T0 + timedelta(minutes=2)
    s.absorb([(0, raw(2, at, 30, 6)), (0, raw(1, at, 300, 0)), (0, b"{not json"),
              (0, raw(1, at, 9, 9, model="nobody")), (0, raw(1, T0 - timedelta(days=1), 1, 0))], now=at.timestamp())
    [judged] = s.breaches(min(s.by_window))  # the canary's errors: drop it
    s.answered(judged, "refused")
    status = {"counts": dict(s.counts), "events_folded": book.events, "unproven_events": 2,
              "windows": len(s.by_window), "watched": len(s.watched), "unsettled": 1}

    metrics = samples(exposition(status))

    assert metrics[("modelog_sentinel_signals_total", ())] == 2
    assert metrics[("modelog_sentinel_signal_requests_total", ())] == 330
    assert metrics[("modelog_sentinel_dropped_signals_total", (("reason", "malformed"),))] == 1
    assert metrics[("modelog_sentinel_dropped_signals_total", (("reason", "unknown_model"),))] == 1
    assert metrics[("modelog_sentinel_dropped_signals_total", (("reason", "too_old"),))] == 1
    assert metrics[("modelog_sentinel_answers_total", (("action", "drop_canary"), ("answer", "refused")))] == 1
    assert metrics[("modelog_sentinel_answers_total", (("action", "drop_canary"), ("answer", "decided")))] == 0
    assert metrics[("modelog_sentinel_events_folded_total", ())] == book.events > 0
    assert metrics[("modelog_sentinel_unproven_events_total", ())] == 2
    assert metrics[("modelog_sentinel_windows", ())] == 1
    assert metrics[("modelog_sentinel_unsettled_requests", ())] == 1


def exposition(status: dict) -> str:
    """What the sentinel's collector shows for `status`, as a scrape would read it."""
    collector, registry = StatusCollector(), CollectorRegistry()
    collector.status = lambda: status
    registry.register(collector)
    return generate_latest(registry).decode()
