"""Serving lookups against a running stack: "which version is in Production?"

    uv run python benchmarks/serving_lookups.py [REQUESTS] [CLIENTS] [RATES] [SECONDS] [WORKERS]

Registers a model with a version in Staging (through the registrar and a
command), then asks the projector for the Staging version over CLIENTS
(default 100) keep-alive connections, half of them pollers sending
If-None-Match (answered 304):
- capacity: closed loop, REQUESTS (default 20,000) lookups in all, each client
  sending its next as soon as the last is answered: lookups/s, p50/p99;
- latency at fixed offered rates (RATES, default 500,1000,2000 lookups/s, for
  SECONDS each, default 8): open loop, each client on its own schedule, and
  each latency measured from the request's scheduled send time, so a slow
  answer is charged for the requests it held back (no coordinated omission):
  p50/p99/p99.9.
Each client has a token of its own, verified at its first lookup, before the
measuring starts: a serving system's token is verified once and then reused
for its life, while 100 new tokens at the same instant would measure 100
signature checks queued behind each other (~80 ms at the first moment).

The load generator must not be the bottleneck on a small machine: a raw
HTTP/1.1 client (write the request bytes, read the head, read Content-Length
bytes), split over WORKERS processes (default 2).
"""

import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import httpx
import uvloop

from modelog.client import Client
from modelog_contract.domain.commands import RequestTransition
from modelog_contract.domain.types import Actor
from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.identity.dev import dev_token, signed
from modelog_platform.settings import EngineEndpoints, ServicePorts


def as_serving() -> dict[str, str]:
    """A serving system's token: `reader` on every model."""
    return {"Authorization": f"Bearer {dev_token('serving-bench', 'reader')}"}


async def prepare(ports: ServicePorts) -> str:
    """A new model whose version 1 is in Staging."""
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


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time: write the
    request bytes, read the head, read Content-Length bytes of body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> "Connection":
        parts = urlsplit(url)
        return cls(*await asyncio.open_connection(parts.hostname, parts.port))

    async def get(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get(b"content-length", 0)))
        return int(lines[0].split(b" ", 2)[1]), headers, body

    def close(self) -> None:
        self.writer.close()


def get_request(url: str, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    lines = [f"GET {parts.path} HTTP/1.1", f"Host: {parts.netloc}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def lookup_client(url: str, poll: bool, start_at: float, sends_at, latencies: list[float]) -> None:
    """Connected, with a first lookup answered (its token verified, a
    poller's ETag taken) before `start_at`; then sends a lookup at each time
    `sends_at` yields (None: at once, closed loop); a latency runs from that
    time, or from the send if there is none."""
    headers = as_serving()
    connection = await Connection.open(url)
    try:
        status, answer, _ = await connection.get(get_request(url, headers))
        if poll:
            headers["If-None-Match"] = answer[b"etag"].decode()
        request = get_request(url, headers)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        for scheduled in sends_at:
            if scheduled is not None and (delay := scheduled - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            started = scheduled if scheduled is not None else time.monotonic()
            status, _, body = await connection.get(request)
            latencies.append((time.monotonic() - started) * 1000)
            assert status in (200, 304), body
    finally:
        connection.close()


def run_worker(url: str, first_client: int, clients: int, total_clients: int, count: int,
               rate: float | None, start_at: float) -> list[float]:
    """One load-generating process: its share of the clients, `count`
    lookups each, closed loop (rate None) or open loop at `rate` lookups/s
    over all clients, spread so the clients' sends interleave evenly."""
    gc.disable()  # the instrument's own collection pauses are not the projector's latency

    async def run() -> list[float]:
        latencies: list[float] = []

        def schedule(index: int):
            if rate is None:
                return [None] * count
            interval = total_clients / rate  # between one client's sends
            first = start_at + interval * index / total_clients
            return [first + interval * k for k in range(count)]

        await asyncio.gather(*(lookup_client(url, index % 2 == 1, start_at, schedule(index), latencies)
                               for index in range(first_client, first_client + clients)))
        return latencies
    return uvloop.run(run())  # the projector's loop too: the instrument should not be the slower side


def generate(pool: ProcessPoolExecutor, workers: int, url: str, clients: int, count: int,
             rate: float | None) -> tuple[list[float], float]:
    """Latencies in ms of every lookup, from every worker, and the seconds it all took."""
    start_at = time.monotonic() + 2.0  # every worker started, its clients connected
    shares = [clients // workers + (1 if w < clients % workers else 0) for w in range(workers)]
    firsts = [sum(shares[:w]) for w in range(workers)]
    futures = [pool.submit(run_worker, url, firsts[w], shares[w], clients, count, rate, start_at)
               for w in range(workers)]
    latencies = [ms for future in futures for ms in future.result()]
    return latencies, time.monotonic() - start_at


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(requests: int, clients: int, rates: list[float], seconds: float, workers: int) -> None:
    ports = ServicePorts()
    model = asyncio.run(prepare(ports))
    url = f"{ports.url('projector')}/v1/models/{model}/stages/Staging"
    print(f"{clients} keep-alive clients (half polling with ETags) in {workers} load-generating processes, "
          "one projector process")
    with ProcessPoolExecutor(workers) as pool:
        generate(pool, workers, url, clients, 20, None)  # warm up: connections, caches, JIT-free paths
        latencies, elapsed = generate(pool, workers, url, clients, requests // clients, None)
        print(f"capacity (closed loop): {len(latencies)} lookups in {elapsed:.1f} s: "
              f"{len(latencies) / elapsed:.0f} lookups/s; p50 {statistics.median(latencies):.1f} ms, "
              f"p99 {quantile(latencies, 0.99):.1f} ms ({load()})")
        for rate in rates:
            latencies, elapsed = generate(pool, workers, url, clients, max(1, int(rate * seconds / clients)), rate)
            print(f"offered {rate:.0f} lookups/s (open loop, {len(latencies)} lookups): "
                  f"achieved {len(latencies) / elapsed:.0f}/s; p50 {statistics.median(latencies):.1f} ms, "
                  f"p99 {quantile(latencies, 0.99):.1f} ms, p99.9 {quantile(latencies, 0.999):.1f} ms ({load()})")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if len(args) > 0 else 20_000,
         int(args[1]) if len(args) > 1 else 100,
         [float(r) for r in args[2].split(",") if r] if len(args) > 2 else [500, 1000, 2000],
         float(args[3]) if len(args) > 3 else 8.0,
         int(args[4]) if len(args) > 4 else 2)
