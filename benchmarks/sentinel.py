"""The sentinel against a running stack: signals aggregated per second, and
breach -> rollback committed after the window closes.

    uv run python benchmarks/sentinel.py [SIGNALS] [ROUNDS]

Throughput: publishes SIGNALS (default 200,000) per-request signals of one
model's two versions to modelog.signals as fast as one producer can, and
times until the sentinel's /v1/status has counted them all; prints the
publishing rate beside the aggregation rate (the second is the figure; when
the two are close, the producer was the bound).

Breach -> rollback: ROUNDS (default 10) times, puts version 2 in Production
(a rollback to it, by an operator), publishes failing signals for it in one
window, and times from that window's end to the moment the projector serves
version 1 in Production again. Prints p50/p99/max, with and without the
grace (MODELOG_SENTINEL_GRACE_S, the wait for signals in flight, which the
window's close includes). Goals (issue 15): >= 20,000 signals/s, < 2 s.
Run it against a stack whose sentinel has a short window
(MODELOG_SENTINEL_WINDOW_S=3, as the test stack has), or each round takes
two minutes.
"""

import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import httpx
from aiokafka import AIOKafkaProducer

from modelog import Client
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.identity.dev import dev_token
from modelog_platform.settings import SIGNALS_TOPIC, EngineEndpoints, ServicePorts
from sentinel.settings import SentinelSettings

PORTS = ServicePorts()


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def person(subject: str, role: str) -> Client:
    return Client(PORTS.url("registrar"), PORTS.url("projector"), token=dev_token(subject, role))


def model_with_two_versions(rules: list[dict]) -> str:
    name = f"bench-sentinel-{uuid4().hex[:8]}"
    with person("bench-ci", "publisher") as ci, person("bench-admin", "admin") as admin:
        directory = Path(tempfile.mkdtemp())
        for n in (1, 2):
            (directory / f"v{n}.bin").write_bytes(f"{name} {n}".encode())
            ci.register_version(name, directory / f"v{n}.bin")
        admin.set_policy(name, {"approvals_required": {}, "rollback_rules": rules})
        for version, stage in ((1, "Staging"), (1, "Production"), (2, "Staging"), (2, "Production")):
            ci.request_transition(name, version, stage)
    return name


def counted() -> int:
    return httpx.get(f"{PORTS.url('sentinel')}/v1/status", timeout=10).json()["counts"].get("signals", 0)


def signal(model: str, version: int, errors: int = 0) -> bytes:
    return json.dumps({"model": model, "version": version, "instance": "bench-1", "requests": 1, "errors": errors,
                       "time": datetime.now(timezone.utc).isoformat(), "metrics": {"latency_ms": 12.5}}).encode()


async def throughput(total: int) -> None:
    model = model_with_two_versions([])
    time.sleep(2)  # the sentinel's book learns of the model from the log
    before = counted()
    producer = AIOKafkaProducer(**kafka_connection(EngineEndpoints()), linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [await producer.send(SIGNALS_TOPIC, signal(model, 1 + n % 2), key=model.encode())
                   for n in range(total)]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    published = time.perf_counter() - started
    while counted() - before < total:
        time.sleep(0.05)
    aggregated = time.perf_counter() - started
    print(f"throughput: {total:,} signals published in {published:.2f}s ({total / published:,.0f}/s), "
          f"aggregated by the sentinel in {aggregated:.2f}s ({total / aggregated:,.0f}/s)")


async def breach_to_rollback(rounds: int, window_s: int, grace_s: float) -> None:
    rule = {"kind": "error_rate", "name": "errors", "max_error_percent": 5, "window_s": window_s, "min_requests": 20}
    model = model_with_two_versions([rule])
    producer = AIOKafkaProducer(**kafka_connection(EngineEndpoints()), linger_ms=5)
    await producer.start()
    delays: list[float] = []
    with person("bench-ops", "operator") as ops:
        try:
            for _ in range(rounds):
                if production(ops, model) != 2:
                    ops.rollback(model, 2)
                # Start at the next window, so the version served it whole.
                window_end = (int(time.time()) // window_s + 2) * window_s
                await asyncio.sleep(window_end - window_s - time.time() + 0.05)
                for _ in range(50):
                    await producer.send(SIGNALS_TOPIC, signal(model, 2, errors=1), key=model.encode())
                await producer.flush()
                while production(ops, model) != 1:
                    await asyncio.sleep(0.02)
                delays.append(time.time() - window_end)
        finally:
            await producer.stop()
    print(f"breach -> rollback committed, from the window's end ({rounds} rounds, window {window_s}s, "
          f"grace {grace_s:g}s): p50 {statistics.median(delays):.2f}s p99 {quantile(delays, 0.99):.2f}s "
          f"max {max(delays):.2f}s; after the close (less the grace): p50 {statistics.median(delays) - grace_s:.2f}s "
          f"p99 {quantile(delays, 0.99) - grace_s:.2f}s")


def production(ops: Client, model: str) -> int | None:
    response = ops.projector.get(f"/v1/models/{model}/stages/Production")
    versions = response.json().get("versions", []) if response.status_code == 200 else []
    return versions[0]["version"] if versions else None


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    settings = SentinelSettings()  # the same environment the stack's sentinel was started with
    asyncio.run(throughput(total))
    asyncio.run(breach_to_rollback(rounds, settings.sentinel_window_s, settings.sentinel_grace_s))


if __name__ == "__main__":
    main()
