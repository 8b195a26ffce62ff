"""Promotion -> change feed latency, against a running stack: how soon a
serving system hears of a new Production version, and how soon a lookup
answers it.

    uv run python benchmarks/change_feed_latency.py [PROMOTIONS]

Registers a model with two versions, both Archived, then subscribes to
/v1/changes?model=…&type=StageChanged (SSE) and sends PROMOTIONS (default 100)
promotions to Production one at a time, straight to modelog.commands as
another service would: an operator's rollback, which needs no approval, of
whichever version is Archived (it archives the other). For each: from sending
the command to receiving its StageChanged on the feed, and from sending it to
the Production lookup answering the new version (polled over a keep-alive
connection with If-None-Match). Prints p50/p99/max of both.
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
from serving_lookups import Connection, as_serving, get_request, load, quantile

from modelog.client import Client
from modelog_contract.domain.commands import RequestTransition, Rollback
from modelog_contract.domain.types import Actor
from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.identity.dev import dev_token, signed
from modelog_platform.settings import EngineEndpoints, ServicePorts

OPERATOR = Actor(subject="feed-bench-operator", roles=("operator",))
POLL_S = 0.005  # a poller at 200 lookups/s: not enough load to slow the feed it is compared with


def command(kind, model: str, **fields):
    return kind(command_id=uuid4(), model=model, actor=OPERATOR, issued_at=datetime.now(timezone.utc), **fields)


async def prepare(ports: ServicePorts, publisher: CommandPublisher) -> str:
    """A model whose versions 1 and 2 are both Archived."""
    model = f"feed-bench-{uuid4().hex[:6]}"
    with Client(ports.url("registrar"), ports.url("projector"), token=dev_token("benchmark", "publisher")) as ci:
        for _ in (1, 2):
            artifact = Path(tempfile.mkdtemp()) / "model.bin"
            artifact.write_bytes(uuid4().bytes * 100)
            ci.register_version(model, artifact)
    archived = [command(RequestTransition, model, version=v, to_stage="Archived") for v in (1, 2)]
    for archive in archived:
        await publisher.publish(archive)
    async with httpx.AsyncClient(base_url=ports.url("projector"), headers=as_serving()) as projector:
        outcome = await projector.get(f"/v1/commands/{archived[-1].command_id}", params={"wait": 10})
        assert outcome.status_code == 200 and outcome.json()["accepted"], outcome.text
    return model


async def feed_events(lines):
    """The CloudEvents of an SSE stream's lines."""
    data = []
    async for line in lines:
        if line.startswith("data: "):
            data.append(line[len("data: "):])
        elif line == "" and data:
            yield json.loads("\n".join(data))
            data = []


async def heard(events, command_id: str) -> float:
    """When the feed delivered the promotion of `command_id`."""
    async for event in events:
        payload = event["data"]
        if payload["command_id"] == command_id and payload["payload"]["to_stage"] == "Production":
            return time.monotonic()
    raise RuntimeError("the change feed ended")


async def visible(connection: Connection, url: str, version: int) -> float:
    """When the Production lookup first answered `version`."""
    headers = as_serving()
    while True:
        status, answer, body = await connection.get(get_request(url, headers))
        if status == 200:
            if [v["version"] for v in json.loads(body)["versions"]] == [version]:
                return time.monotonic()
            headers["If-None-Match"] = answer[b"etag"].decode()
        await asyncio.sleep(POLL_S)


async def main(promotions: int) -> None:
    ports = ServicePorts()
    publisher = CommandPublisher(EngineEndpoints(), sign=signed)
    await publisher.start()
    try:
        model = await prepare(ports, publisher)
        lookup = f"{ports.url('projector')}/v1/models/{model}/stages/Production"
        connection = await Connection.open(lookup)
        async with httpx.AsyncClient(base_url=ports.url("projector"), headers=as_serving(), timeout=None) as http:
            params = {"model": model, "type": "StageChanged"}
            async with http.stream("GET", "/v1/changes", params=params) as response:
                lines = response.aiter_lines()
                assert (await anext(lines)).startswith(":"), "the feed's opening comment"  # subscribed from here
                events = feed_events(lines)
                to_feed, to_lookup = [], []
                for n in range(promotions):
                    version = 1 + n % 2
                    rollback = command(Rollback, model, version=version)
                    sent = time.monotonic()
                    await publisher.publish(rollback)
                    on_feed, in_lookup = await asyncio.gather(heard(events, str(rollback.command_id)),
                                                              visible(connection, lookup, version))
                    to_feed.append((on_feed - sent) * 1000)
                    to_lookup.append((in_lookup - sent) * 1000)
        connection.close()
    finally:
        await publisher.stop()
    for name, samples in (("promotion -> SSE event", to_feed), ("promotion -> lookup answers it", to_lookup)):
        print(f"{name}: p50 {statistics.median(samples):.1f} ms, p99 {quantile(samples, 0.99):.1f} ms, "
              f"max {max(samples):.1f} ms ({promotions} promotions, {load()})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
