"""The demo's sentinel: a serving process answers requests, its monitoring
publishes what it saw to `modelog.signals` as the `publisher` Kafka principal
(docs/serving.md, "Signals and the sentinel"), and under the model's rollback
rule the sentinel first takes a failing canary's share back, then rolls a
failing Production version back, with no one at the keyboard.

Apart from demo.py because it is the one chapter that runs a request loop and
a Kafka producer of its own.
"""

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from modelog import ModelWatcher, SplitWatcher
from modelog_platform import engines
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.settings import SIGNALS_TOPIC, EngineEndpoints, LocalStack, ServicePorts

RULE_NAME = "errors-above-2pc"
FAILING_SHARE = 0.1  # the demo's broken version fails 1 request in 10
REQUESTS_PER_TICK, TICK_S = 10, 0.1  # about 100 requests a second, light on a shared machine
INSTANCE = "serving-eu-1"
CUSTOMERS = 1000  # the request keys a split routes by


def sentinel_window_s(ports: ServicePorts, model: str) -> int:
    """The window the stack's sentinel sums signals in (MODELOG_SENTINEL_WINDOW_S)."""
    answer = httpx.get(f"{ports.url('sentinel')}/v1/windows", params={"model": model}, timeout=10)
    answer.raise_for_status()
    return int(answer.json()["window_s"])


def rollback_rule(window_s: int) -> dict:
    """More than 2% of requests failing over one sentinel window, once a third
    of what a 10% canary answers in that window was served there: a Production
    version is rolled back, a canary's share given back to Production. Scaled
    by the window, so the rule fits whatever window the stack's sentinel has."""
    canary_per_s = 0.1 * REQUESTS_PER_TICK / TICK_S
    return {"kind": "error_rate", "name": RULE_NAME, "max_error_percent": 2, "window_s": window_s,
            "min_requests": max(10, int(window_s * canary_per_s / 3))}


def publisher_endpoints() -> EngineEndpoints:
    """The local stack's Kafka, reached as the `publisher` principal, which may write modelog.signals."""
    env = engines.service_env(EngineEndpoints(), LocalStack(), "publisher")
    if "MODELOG_KAFKA_USERNAME" not in env:  # a broker without principals: any client may write
        return EngineEndpoints()
    return EngineEndpoints(kafka_username=env["MODELOG_KAFKA_USERNAME"], kafka_password=SecretStr(""),
                           kafka_password_file=Path(env["MODELOG_KAFKA_PASSWORD_FILE"]),
                           kafka_ca_file=Path(env["MODELOG_KAFKA_CA_FILE"]))


def signal(model: str, version: int, requests: int, errors: int, latency_ms: float) -> bytes:
    return json.dumps({"model": model, "version": version, "instance": INSTANCE,
                       "time": datetime.now(timezone.utc).isoformat(), "requests": requests, "errors": errors,
                       "metrics": {"latency_ms": round(latency_ms, 3)}}).encode()


class Tally:
    """What the serving process answered, per version: the whole run, and the second not yet published."""

    def __init__(self) -> None:
        self.requests: Counter[int] = Counter()
        self.errors: Counter[int] = Counter()
        self.second: dict[int, list[float]] = {}  # version -> [requests, errors, latency sum]

    def count(self, version: int, failed: bool, latency_ms: float) -> None:
        self.requests[version] += 1
        self.errors[version] += failed
        figures = self.second.setdefault(version, [0, 0, 0.0])
        figures[0] += 1
        figures[1] += failed
        figures[2] += latency_ms

    def take_second(self) -> dict[int, list[float]]:
        taken, self.second = self.second, {}
        return taken


Pick = Callable[[str], tuple[int, Any]]  # a request's key -> the version that answers it, and its model


def production_pick(serving: ModelWatcher) -> Pick:
    """Every request on what the Production watcher serves now."""
    def pick(key: str) -> tuple[int, Any]:
        served = serving.served  # one version for the whole request, even if a swap lands meanwhile
        return served.version, served.model
    return pick


def answer_one(pick: Pick, key: str, broken: int, transaction: list[list[float]], rng: random.Random,
               tally: Tally) -> None:
    """One scoring request on the version `pick` gives its key; the broken version fails some."""
    started = time.perf_counter()
    version, model = pick(key)
    model.predict_proba(transaction)
    failed = version == broken and rng.random() < FAILING_SHARE
    tally.count(version, failed, 1000 * (time.perf_counter() - started))


async def serve_until(model: str, pick: Pick, broken: int, done: Callable[[], bool], awaited: str,
                      timeout_s: float) -> Tally:
    """Answer requests (customers' keys, picked at random) until `done()`;
    each second, publish that second's figures per version as a signal."""
    rng = random.Random(15)
    transactions = [[[rng.gauss(0, 1) for _ in range(12)]] for _ in range(100)]
    producer = AIOKafkaProducer(**kafka_connection(publisher_endpoints()), linger_ms=5)
    await producer.start()
    tally = Tally()
    deadline = time.monotonic() + timeout_s
    next_publish = time.monotonic() + 1
    try:
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{awaited} did not come within {timeout_s:.0f}s: "
                                   "see the sentinel's log (`modelog status` names it)")
            for _ in range(REQUESTS_PER_TICK):
                key = f"customer-{rng.randrange(CUSTOMERS)}"
                answer_one(pick, key, broken, rng.choice(transactions), rng, tally)
            if time.monotonic() >= next_publish:
                next_publish += 1
                for version, (requests, errors, latency) in tally.take_second().items():
                    await producer.send(SIGNALS_TOPIC, signal(model, version, int(requests), int(errors),
                                                              latency / requests), key=model.encode())
            await asyncio.sleep(TICK_S)
    finally:
        await producer.stop()
    return tally


async def serve_until_canary_removed(model: str, router: SplitWatcher, canary: int, champion: int,
                                     timeout_s: float) -> Tally:
    """Requests routed by the split until the router serves `champion` alone: the canary removed."""
    return await serve_until(model, router.route, canary, lambda: router.weights == {champion: 100},
                             f"the removal of the canary v{canary}", timeout_s)


async def serve_until_rolled_back(model: str, serving: ModelWatcher, broken: int, restored: int,
                                  timeout_s: float) -> Tally:
    """Requests on the Production model until the serving process swapped `restored` back in."""
    return await serve_until(model, production_pick(serving), broken, lambda: serving.version == restored,
                             f"a rollback to v{restored}", timeout_s)
