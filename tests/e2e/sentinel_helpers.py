"""What the sentinel's tests share: a monitoring publisher of serving signals,
the sentinel's counters (its /v1/status and its /metrics), and the decisions
the log holds for a model."""

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from modelog import Client
from modelog_contract.codec import decode_event
from modelog_contract.domain.events import Event
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import committed_records_now, model_partition
from modelog_platform.settings import EVENTS_TOPIC, SIGNALS_TOPIC, EngineEndpoints
from tests.e2e.helpers import unique

RULE = {"kind": "error_rate", "name": "errors-over-5pc", "max_error_percent": 5, "window_s": 3, "min_requests": 20}
WAIT_S = 120  # generous: a condition, never a speed, is what these tests check
SENTINEL = "modelog-sentinel"


def signal(model: str, version: int, requests: int, errors: int, **metrics: float) -> bytes:
    return json.dumps({"model": model, "version": version, "instance": "test-server-1",
                       "time": datetime.now(timezone.utc).isoformat(), "requests": requests, "errors": errors,
                       "metrics": metrics}).encode()


class Monitoring:
    """Publishes signals to modelog.signals keyed by model, as a fleet's monitoring would."""

    def __init__(self, endpoints: EngineEndpoints):
        self.producer = AIOKafkaProducer(**kafka_connection(endpoints), linger_ms=5)

    async def __aenter__(self) -> "Monitoring":
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, model: str, raw: bytes) -> None:
        await self.producer.send_and_wait(SIGNALS_TOPIC, raw, key=model.encode())

    async def serve_until(self, model: str, per_tick: dict[int, tuple[int, int]], done: Callable[[], bool],
                          tick_s: float = 0.2, timeout_s: float = WAIT_S) -> None:
        """Each tick, for each version, a signal of (requests, errors), until `done()`."""
        deadline = time.monotonic() + timeout_s
        while not await asyncio.to_thread(done):
            assert time.monotonic() < deadline, f"{model}: the awaited decision did not come in {timeout_s}s"
            for version, (requests, errors) in per_tick.items():
                await self.send(model, signal(model, version, requests, errors, latency_ms=10.0))
            await asyncio.sleep(tick_s)


def sentinel_status(stack) -> dict:
    return httpx.get(f"{stack.url('sentinel')}/v1/status", timeout=10).json()


def sentinel_metrics(stack) -> dict[tuple[str, tuple], float]:
    """(sample name, its sorted label pairs) -> value, from a scrape of the sentinel's /metrics."""
    response = httpx.get(f"{stack.url('sentinel')}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


async def events_of(endpoints: EngineEndpoints, model: str) -> list[Event]:
    partition = model_partition(model, endpoints.topic_partitions)
    events = [decode_event(r.value) async for r in committed_records_now(endpoints, EVENTS_TOPIC, [partition])]
    return [e for e in events if e.model == model]


def sentinel_decisions(events: list[Event]) -> list[Event]:
    """The sentinel's decisions: its split changes and the rollbacks' stage changes."""
    return [e for e in events if e.actor.subject == SENTINEL and e.type in ("TrafficSplitSet", "StageChanged")
            and getattr(e.payload, "why", "rollback") == "rollback"]


def canary_on(client: Client, admin_client: Client, operator: Client, tmp_path, rules=(RULE,)) -> str:
    """v1 in Production, v2 in Staging taking 10% of the traffic, under a policy with `rules`."""
    name = unique("sentinel")
    for n in (1, 2):
        (tmp_path / f"{name}-v{n}.bin").write_bytes(f"{name} version {n}".encode())
        client.register_version(name, tmp_path / f"{name}-v{n}.bin")
    admin_client.set_policy(name, {"approvals_required": {}, "rollback_rules": list(rules)})
    for version, stage in ((1, "Staging"), (1, "Production"), (2, "Staging")):
        client.request_transition(name, version, stage)
    operator.set_traffic_split(name, {1: 90, 2: 10}, comment="canary v2")
    return name


def production_of(operator: Client, model: str) -> int | None:
    response = operator.projector.get(f"/v1/models/{model}/stages/Production")
    versions = response.json().get("versions", []) if response.status_code == 200 else []
    return versions[0]["version"] if versions else None


def canary_removed(operator: Client, model: str) -> Callable[[], bool]:
    return lambda: operator.traffic_split(model)["split"] is False
