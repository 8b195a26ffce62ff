"""Serving lookups against a running stack: "which version is in Production?"

    uv run python benchmarks/serving_lookups.py [REQUESTS] [CLIENTS]

Registers a model with a version in Staging (through the registrar and a
command), then CLIENTS (default 100) keep-alive clients ask the projector for
the Staging version REQUESTS (default 20,000) times in all, half of them as
pollers sending If-None-Match (answered 304). Prints lookups/s and p50/p99.
"""

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import httpx

from modelog.adapters.commands import CommandPublisher
from modelog.client import Client
from modelog.identity.dev import dev_token
from modelog.domain.commands import RequestTransition
from modelog.domain.types import Actor
from modelog.identity.dev import signed
from modelog.settings import EngineEndpoints, ServicePorts


def as_serving() -> dict[str, str]:
    """A serving system's token: `reader` on every model (verified on each lookup)."""
    return {"Authorization": f"Bearer {dev_token('serving-bench', 'reader')}"}


async def prepare(ports: ServicePorts) -> str:
    model = f"serving-bench-{uuid4().hex[:6]}"
    artifact = Path(tempfile.mkdtemp()) / "model.bin"
    artifact.write_bytes(uuid4().bytes * 1000)
    Client(ports.url("registrar"), ports.url("projector"),
           token=dev_token("benchmark", "publisher")).register_version(model, artifact)
    publisher = CommandPublisher(EngineEndpoints(), sign=signed)
    await publisher.start()
    command = RequestTransition(command_id=uuid4(), model=model, actor=Actor(subject="benchmark"),
                                issued_at=datetime.now(timezone.utc), version=1, to_stage="Staging")
    await publisher.publish(command)
    await publisher.stop()
    async with httpx.AsyncClient(base_url=ports.url("projector"), headers=as_serving()) as projector:
        await projector.get(f"/v1/commands/{command.command_id}", params={"wait": 10})
    return model


async def client_loop(url: str, count: int, poll: bool, latencies: list[float]) -> None:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1), headers=as_serving()) as http:
        etag = (await http.get(url)).headers["etag"] if poll else None
        for _ in range(count):
            started = time.perf_counter()
            response = await http.get(url, headers={"If-None-Match": etag} if etag else {})
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 304), response.text


async def main(requests: int, clients: int) -> None:
    ports = ServicePorts()
    model = await prepare(ports)
    url = f"{ports.url('projector')}/v1/models/{model}/stages/Staging"
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(url, requests // clients, i % 2 == 1, latencies) for i in range(clients)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(sorted(latencies), n=100, method="inclusive")
    print(f"{len(latencies)} stage lookups from {clients} keep-alive clients (half polling with ETags) "
          f"in {elapsed:.1f} s: {len(latencies) / elapsed:.0f} lookups/s; p50 {q[49]:.1f} ms, "
          f"p99 {q[98]:.1f} ms (one projector process)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 100))
