"""The sentinel against the real stack: serving signals are windowed per
version, a canary whose errors spike is removed and a degraded Production
version rolled back to the one before it, each decision made once through the
registrar as the sentinel's own identity and carrying its evidence; signals
that are malformed or name no model are counted and dropped while it goes on
deciding."""

import asyncio
import time

import httpx
import pytest

from tests.e2e.helpers import unique
from tests.e2e.sentinel_helpers import (
    RULE,
    SENTINEL,
    Monitoring,
    canary_on,
    events_of,
    production_of,
    sentinel_decisions,
    sentinel_metrics,
    sentinel_status,
    signal,
)

pytestmark = pytest.mark.engines

async def test_a_failing_canary_is_removed_then_a_degraded_production_rolled_back_each_once_with_its_evidence(
        engines, stack, client, admin_client, operator, tmp_path):
    model = canary_on(client, admin_client, operator, tmp_path)
    async with Monitoring(engines) as monitoring:
        # v1 healthy, the canary failing half its requests.
        await monitoring.serve_until(model, {1: (90, 0), 2: (10, 5)},
                                     lambda: operator.traffic_split(model)["split"] is False)
        dropped = sentinel_decisions(await events_of(engines, model))
        assert [e.type for e in dropped] == ["TrafficSplitSet"]
        [split] = dropped
        assert [(r.version, r.weight) for r in split.payload.routes] == [(1, 100)]
        assert split.actor.subject == SENTINEL and split.actor.roles == ("operator",)
        evidence = split.payload.evidence
        assert evidence.rule.name == RULE["name"] and "version 2" in evidence.detail
        canary = next(v for v in evidence.versions if v.version == 2)
        assert canary.requests >= RULE["min_requests"] and canary.errors * 100 > 5 * canary.requests

        # v2 reaches Production and degrades: back to v1, the version before it.
        client.request_transition(model, 2, "Production")
        assert production_of(operator, model) == 2
        await monitoring.serve_until(model, {2: (100, 30)}, lambda: production_of(operator, model) == 1)
        # A few more windows of the same signals decide nothing more: v2 no longer serves.
        await asyncio.sleep(3 * 3.5)

    decisions = sentinel_decisions(await events_of(engines, model))
    assert [(e.type, getattr(e.payload, "version", None)) for e in decisions] == [
        ("TrafficSplitSet", None), ("StageChanged", 1)]
    rollback = decisions[1]
    assert (rollback.payload.from_stage, rollback.payload.to_stage) == ("Archived", "Production")
    assert rollback.payload.evidence.rule.name == RULE["name"]
    assert [v.version for v in rollback.payload.evidence.versions] == [2]
    assert rollback.payload.evidence.versions[0].errors * 100 > 5 * rollback.payload.evidence.versions[0].requests


async def test_malformed_and_unknown_model_signals_are_counted_and_dropped_and_the_sentinel_goes_on_deciding(
        engines, stack, client, admin_client, operator, tmp_path):
    model = canary_on(client, admin_client, operator, tmp_path)
    before = sentinel_status(stack)["counts"]
    async with Monitoring(engines) as monitoring:
        await monitoring.send(model, b"not json at all")
        await monitoring.send(model, b'{"model": "x"}')
        await monitoring.send(model, signal(model, 2, requests=1, errors=2))  # more errors than requests
        ghost = unique("no-such-model")
        await monitoring.send(ghost, signal(ghost, 1, requests=100, errors=100))
        await monitoring.serve_until(model, {1: (90, 0), 2: (10, 5)},
                                     lambda: operator.traffic_split(model)["split"] is False)
    after = sentinel_status(stack)["counts"]
    assert after.get("malformed", 0) - before.get("malformed", 0) >= 3
    assert after.get("unknown_model", 0) - before.get("unknown_model", 0) >= 1
    assert [e.type for e in sentinel_decisions(await events_of(engines, model))] == ["TrafficSplitSet"]
    # Prometheus sees the same counts (read after the status: never fewer).
    scraped = sentinel_metrics(stack)
    for reason in ("malformed", "unknown_model"):
        assert scraped[("modelog_sentinel_dropped_signals_total", (("reason", reason),))] >= after[reason]
    answers = {labels: value for (name, labels), value in scraped.items() if name == "modelog_sentinel_answers_total"}
    assert all(value >= after.get(f"{dict(labels)['answer']}_{dict(labels)['action']}", 0)
               for labels, value in answers.items())
    assert sum(v for labels, v in answers.items() if ("action", "drop_canary") in labels) >= 1  # the canary it dropped


def test_the_windows_show_each_versions_figures(stack, engines, client, admin_client, operator, tmp_path):
    """The A/B results per version: what each served in each kept window."""
    model = canary_on(client, admin_client, operator, tmp_path, rules=())

    async def publish() -> None:
        async with Monitoring(engines) as monitoring:
            await monitoring.send(model, signal(model, 1, 90, 1, latency_ms=12.0, conversion=0.031))
            await monitoring.send(model, signal(model, 2, 10, 0, latency_ms=20.0, conversion=0.040))

    asyncio.run(publish())
    url = f"{stack.url('sentinel')}/v1/windows"
    for _ in range(400):
        shown = httpx.get(url, params={"model": model}, timeout=10).json()
        versions = [v for window in shown["windows"] for v in window["versions"]]
        if {v["version"] for v in versions} == {1, 2}:
            break
        time.sleep(0.25)
    by_version = {v["version"]: v for v in versions}
    assert (by_version[1]["requests"], by_version[1]["errors"]) == (90, 1)
    assert by_version[2]["metrics"] == {"latency_ms": 20.0, "conversion": 0.04}
    assert httpx.get(url, params={"model": unique("nobody")}, timeout=10).status_code == 404
