"""The sentinel against a running stack: signals aggregated per second, and
breach -> rollback committed after the window closes.

    uv run python benchmarks/sentinel.py [SIGNALS] [ROUNDS] [PER_MESSAGE]

Throughput: publishes SIGNALS (default 200,000) per-request signals of one
model's two versions to modelog.signals as fast as one producer can, in
messages of PER_MESSAGE signals each (default 100, a JSON array; 1 sends
each as a message of its own), and times until the sentinel's /v1/status has
counted them all; prints the publishing rate beside the aggregation rate (the
second is the figure; when the two are close, the producer was the bound),
the sentinel's CPU seconds when it runs on this machine, and the load average.

Breach -> rollback: ROUNDS (default 10) times, puts version 2 in Production
(a rollback to it, by an operator), publishes failing signals for it in one
window, and times from that window's end to the moment the projector serves
version 1 in Production again. Prints p50/p99/max, with and without the
grace (MODELOG_SENTINEL_GRACE_S, the wait for signals in flight, which the
window's close includes). Goals (issue 15): >= 20,000 signals/s, < 2 s.
Run it against a stack whose sentinel has a short window
(MODELOG_SENTINEL_WINDOW_S=3, as the test stack has), or each round takes
two minutes; the window and grace are the running sentinel's (/v1/status).
"""

import asyncio
import json
import os
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
from modelog_platform.settings import SIGNALS_TOPIC, EngineEndpoints, LocalStack, ServicePorts

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


def status() -> dict:
    return httpx.get(f"{PORTS.url('sentinel')}/v1/status", timeout=10).json()


def counted() -> int:
    return status()["counts"].get("signals", 0)


def signal(model: str, version: int, errors: int = 0) -> dict:
    return {"model": model, "version": version, "instance": "bench-1", "requests": 1, "errors": errors,
            "time": datetime.now(timezone.utc).isoformat(), "metrics": {"latency_ms": 12.5}}


def message(signals: list[dict]) -> bytes:
    return json.dumps(signals[0] if len(signals) == 1 else signals).encode()


def sentinel_cpu_s() -> float | None:
    """The local sentinel's CPU seconds so far (user + system), if its pid file is on this machine."""
    try:
        pid = int((LocalStack().home / "run" / "sentinel.pid").read_text())
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(total: int, per_message: int) -> None:
    model = model_with_two_versions([])
    time.sleep(2)  # the sentinel's book learns of the model from the log
    before, cpu_before, load_before = counted(), sentinel_cpu_s(), os.getloadavg()[0]
    producer = AIOKafkaProducer(**kafka_connection(EngineEndpoints()), linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [await producer.send(SIGNALS_TOPIC, message([signal(model, 1 + n % 2) for n in range(
                       first, min(total, first + per_message))]), key=model.encode())
                   for first in range(0, total, per_message)]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    published = time.perf_counter() - started
    while counted() - before < total:
        time.sleep(0.2)  # each look costs the sentinel CPU: not so often that it shows in the figure
    aggregated = time.perf_counter() - started
    cpu_after = sentinel_cpu_s()
    cpu = (f"; the sentinel's CPU {cpu_after - cpu_before:.1f}s ({(cpu_after - cpu_before) / total * 1e6:.0f} µs a "
           f"signal)" if cpu_before is not None and cpu_after is not None else "")
    print(f"throughput, {per_message} signal(s) a message: {total:,} signals published in {published:.2f}s "
          f"({total / published:,.0f}/s), aggregated by the sentinel in {aggregated:.2f}s "
          f"({total / aggregated:,.0f}/s){cpu}; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")


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
                    await producer.send(SIGNALS_TOPIC, message([signal(model, 2, errors=1)]), key=model.encode())
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
    per_message = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    asyncio.run(throughput(total, per_message))
    if rounds:
        windows = status()  # the running sentinel's own window and grace
        asyncio.run(breach_to_rollback(rounds, windows["window_s"], windows["grace_s"]))


if __name__ == "__main__":
    main()
