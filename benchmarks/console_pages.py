"""The console's pages at scale: how long the registrar takes to answer each
page when the registry holds many models and one model has a long history.

    uv run python benchmarks/console_pages.py [--models 1000] [--versions 50] [--events 10000]
                                              [--samples 50] [--reuse PREFIX] [--label TEXT] [--only PAGE]

Seeds a fresh set of models named PREFIX-mNNNN: each created with a team tag,
then VERSIONS versions registered by reference (no artifact bytes), and in
every tenth model version 1 taken to Production with a reviewer's approval
and version 2 left waiting for approval in Production. One more model,
PREFIX-big, gets about EVENTS events (the history of audit_queries.py).
Seeding publishes signed commands to modelog.commands, as a fleet of training
pipelines would: the promoter decides every one, the projector and the auditor
take the events from the log. Only the registrar's HTTP front is skipped; one
registration at a time through it would take hours here. The seeding rate is
printed. --reuse PREFIX measures models an earlier run seeded, without
seeding, so a change can be measured before and after on the same data.

Then, signed in to the console as a reviewer, asks each page SAMPLES times one
after another on one keep-alive connection and prints p50/p95/p99/max per
page: the models list (first page, a name search, a tag search, keyset pages
further on), a model's page, a version's page, the approvals inbox and the
first page of the big model's trail. Times are wall time on loopback, so they
are the registrar's time to answer (with the projector and auditor it asks),
not a browser's rendering. It never asserts a time.
"""

import argparse
import asyncio
import os
import random
import statistics
import time
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from uuid import uuid4

import httpx
from audit_queries import history

from modelog_contract.domain.commands import ApproveTransition, CreateModel, RegisterVersion, RequestTransition
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform.adapters.commands import command_publisher
from modelog_platform.identity.dev import dev_token, signed
from modelog_platform.settings import EngineEndpoints, ServicePorts

PIPELINE = Actor(subject="bench-pipeline", roles=("publisher",))
REVIEWER = Actor(subject="bench-reviewer", roles=("approver",))
CHUNK_MODELS = 25  # models published at once; the next chunk goes out while this one is decided
REQUEST_SHOWN = '<article class="request"'
CARD = "# A benchmark model\n\nTrained on *synthetic* data; evaluated on a held-out split.\n"


def model_commands(name: str, index: int, versions: int, start: datetime) -> list:
    """One model's commands, oldest first; every tenth ends with a request waiting in Production."""
    clock = (start + timedelta(seconds=i) for i in range(versions + 10))

    def make(kind, actor=PIPELINE, **fields):
        return kind(command_id=uuid4(), model=name, actor=actor, issued_at=next(clock), **fields)

    commands = [make(CreateModel, description=f"benchmark model {index}", tags={"team": f"team-{index % 20}"})]
    for n in range(1, versions + 1):
        digest = sha256(f"{name}/{n}".encode()).hexdigest()
        commands.append(make(RegisterVersion, artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}",
                                                                sha256=digest, size=1000 + n),
                             run_id=f"run-{index}-{n}", model_card=CARD,
                             metrics={"auc": 0.8 + n / 1000, "loss": 0.3 - n / 1000}))
    if index % 10 == 0 and versions >= 2:
        production = make(RequestTransition, version=1, to_stage="Production")
        commands += [make(RequestTransition, version=1, to_stage="Staging"), production,
                     make(ApproveTransition, REVIEWER, request_id=production.command_id),
                     make(RequestTransition, version=2, to_stage="Staging"),
                     make(RequestTransition, version=2, to_stage="Production")]
    return commands


async def decided(http: httpx.AsyncClient, ports: ServicePorts, commands: list) -> None:
    """Wait until each of `commands` is decided and projected."""
    async def one(command) -> None:
        url = f"{ports.url('projector')}/v1/commands/{command.command_id}"
        while True:
            try:
                if (await http.get(url, params={"wait": 20})).status_code == 200:
                    return
            except httpx.TransportError:  # a kept-alive connection the projector closed meanwhile
                await asyncio.sleep(0.2)
    await asyncio.gather(*map(one, commands))


async def seed(prefix: str, models: int, versions: int, events: int) -> None:
    endpoints, ports = EngineEndpoints(), ServicePorts()
    start = datetime.now(timezone.utc) - timedelta(days=3)
    chunks = [[model_commands(f"{prefix}-m{i:04d}", i, versions, start) for i in range(j, min(j + CHUNK_MODELS, models))]
              for j in range(0, models, CHUNK_MODELS)]
    big = history(f"{prefix}-big", events, start)
    sent, began = 0, time.perf_counter()
    reader = {"Authorization": f"Bearer {dev_token('bench-seeder', 'reader')}"}
    async with command_publisher(endpoints, sign=signed) as publisher, \
            httpx.AsyncClient(timeout=60, headers=reader) as http:
        waiting: list = []
        for chunk in [*chunks, [big]]:
            batch = [command for model in chunk for command in model]
            await publisher.publish_many((command, None) for command in batch)
            sent += len(batch)
            await decided(http, ports, waiting)  # one chunk in flight while the next is published
            waiting = [model[-1] for model in chunk]
            took = time.perf_counter() - began
            print(f"  seeded {sent} commands in {took:.0f} s ({sent / took:.0f} commands/s)", flush=True)
        await decided(http, ports, waiting)
        timeline = f"{ports.url('auditor')}/v1/audit/models/{prefix}-big/timeline"
        auditor = {"Authorization": f"Bearer {dev_token('bench-auditor', 'auditor')}"}
        while len((await http.get(timeline, params={"limit": 1}, headers=auditor)).json().get("events", [])) < 1:
            await asyncio.sleep(0.5)
    took = time.perf_counter() - began
    print(f"seeded {models} models x {versions} versions and {prefix}-big ({events} events): {sent} commands "
          f"decided and projected in {took:.0f} s, {sent / took:.0f} commands/s", flush=True)


def console_session(ports: ServicePorts) -> httpx.Client:
    """A keep-alive client signed in to the console as a reviewer."""
    token = dev_token("bench-console", "approver")
    link = httpx.post(f"{ports.url('registrar')}/console/sign-in/links",
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
    link.raise_for_status()
    client = httpx.Client(base_url=ports.url("registrar"), timeout=120)
    opened = client.get(link.json()["url"])
    assert opened.status_code == 303, opened.text
    return client


def pages(prefix: str, models: int, versions: int, samples: int) -> dict[str, list[str]]:
    """Each page's URLs, one per sample."""
    rng = random.Random(7)
    names = [f"{prefix}-m{i:04d}" for i in range(models)]

    def some(make) -> list[str]:
        return [make() for _ in range(samples)]

    return {
        "models, first page": some(lambda: "/console/models"),
        "models, name search": some(lambda: f"/console/models?name={prefix}-m0{rng.randint(0, 9)}*"),
        "models, tag search": some(lambda: f"/console/models?tag=team%3Dteam-{rng.randint(0, 19)}"),
        "models, keyset page": some(lambda: f"/console/models?after={rng.choice(names)}"),
        "model": some(lambda: f"/console/models/{rng.choice(names)}"),
        "version": some(lambda: f"/console/models/{rng.choice(names)}/versions/{rng.randint(1, versions)}"),
        "approvals inbox": some(lambda: "/console/approvals"),
        "trail, big model, first page": some(lambda: f"/console/models/{prefix}-big/trail"),
    }


def timed(client: httpx.Client, urls: list[str]) -> tuple[list[float], str]:
    latencies, body = [], ""
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
        body = response.text
    return latencies, body


def figures(page: str, latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return (f"{page:<32} n={len(latencies):<4} p50 {q[49]:7.1f}  p95 {q[94]:7.1f}  p99 {q[98]:7.1f}  "
            f"max {max(latencies):7.1f} ms")


def measure(prefix: str, models: int, versions: int, samples: int, label: str, only: str) -> None:
    ports = ServicePorts()
    print(f"[{label}] {models} models x {versions} versions, {prefix}-big; load average "
          f"{os.getloadavg()[0]:.1f}; wall ms per page on loopback", flush=True)
    client = console_session(ports)
    try:
        for page, urls in pages(prefix, models, versions, samples).items():
            if only not in page:
                continue
            timed(client, urls[:2])  # the first asks fill the registrar's and auditor's caches
            latencies, body = timed(client, urls)
            shown = f"  ({body.count(REQUEST_SHOWN)} requests shown)" if page == "approvals inbox" else ""
            print(f"[{label}] {figures(page, latencies)}{shown}", flush=True)
    finally:
        client.close()
    print(f"[{label}] load average at the end {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--reuse", metavar="PREFIX", help="measure the models an earlier run seeded")
    parser.add_argument("--label", default="console", help="a word printed before every figure (before, after)")
    parser.add_argument("--only", default="", help="only the pages whose name holds this (inbox, models, trail)")
    args = parser.parse_args()
    prefix = args.reuse or f"cp{uuid4().hex[:4]}"
    if not args.reuse:
        asyncio.run(seed(prefix, args.models, args.versions, args.events))
    measure(prefix, args.models, args.versions, args.samples, args.label, args.only)


if __name__ == "__main__":
    main()
