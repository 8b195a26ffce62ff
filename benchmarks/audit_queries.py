"""As-of queries against a running stack: "what did this model look like then?"

    uv run python benchmarks/audit_queries.py [EVENTS] [QUERIES] [CLIENTS] [MODEL]

Builds one model with about EVENTS (default 10,000) events by publishing
commands to modelog.commands, stamped one second apart: 100 registered
versions, then metrics reports and tags, and every 100 commands a version
promoted through Staging to Production with a reviewer's approval. Once
the auditor holds them all, asks the state as of the last instant once,
then QUERIES (default 2,000) as-of questions at random instants and seqs
from CLIENTS (default 1) keep-alive clients. Prints the first answer's time and p50/p99 of the rest.
MODEL asks about a model an earlier run built instead of building one.

Then, where the auditor is a process of this local stack, the first as-of
answer after an auditor restart (after one other request, the process's own
warm-up), and RESTART_QUERIES questions after it, ROUNDS times each way,
alternating: with its stored checkpoints off (MODELOG_AUDIT_CHECKPOINT_EVERY=0:
memory only, as before they were stored, so the first answer folds the
model's whole history) and on (one stored checkpoint read, at most that
many events folded). The auditor is left running with its usual settings.
"""

import asyncio
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from uuid import uuid4

import httpx

from modelog_contract.domain.commands import (
    ApproveTransition,
    RegisterVersion,
    ReportMetrics,
    RequestTransition,
    SetTag,
)
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform import services
from modelog_platform.adapters.commands import command_publisher
from modelog_platform.identity.dev import dev_token, signed
from modelog_platform.settings import EngineEndpoints, LocalStack, ServicePorts

PUBLISHER = Actor(subject="bench-pipeline", roles=("publisher",))
REVIEWER = Actor(subject="bench-reviewer", roles=("approver",))
VERSIONS = 100
ROUNDS = 3  # auditor restarts each way
RESTART_QUERIES = 200  # as-of questions after each restart


def as_auditor() -> dict[str, str]:
    return {"Authorization": f"Bearer {dev_token('bench-auditor', 'auditor')}"}


def history(model: str, events: int, start: datetime) -> list:
    """About `events` events: every command yields one, a completed approval two."""
    clock = (start + timedelta(seconds=i) for i in range(events * 2))

    def make(kind, actor=PUBLISHER, **fields):
        return kind(command_id=uuid4(), model=model, actor=actor, issued_at=next(clock), **fields)

    commands = []
    for n in range(1, VERSIONS + 1):
        digest = sha256(f"{model}/{n}".encode()).hexdigest()
        commands.append(make(RegisterVersion, artifact=Artifact(
            uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=n), metrics={"auc": 0.8}))
    produced, i = VERSIONS + 1, 0
    while produced < events:
        i += 1
        version = i % VERSIONS + 1
        if i % 100 == 0:  # promote the next version through Staging to Production, with a review
            promoted = i // 100
            production = make(RequestTransition, version=promoted, to_stage="Production")
            commands += [make(RequestTransition, version=promoted, to_stage="Staging"), production,
                         make(ApproveTransition, REVIEWER, request_id=production.command_id)]
            produced += 5  # moved to Staging, requested, approved, moved, the last one archived
        elif i % 2:
            commands.append(make(ReportMetrics, version=version, metrics={"auc": 0.8 + (i % 997) / 10_000}))
            produced += 1
        else:
            commands.append(make(SetTag, version=version, key=f"k{i % 7}", value=str(i)))
            produced += 1
    return commands


async def head_after(ports: ServicePorts, last_command, timeout_s: float = 600) -> int:
    """The model's last seq once the last command is decided and the auditor holds it."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=60, headers=as_auditor()) as http:
        while (outcome := await http.get(f"{ports.url('projector')}/v1/commands/{last_command.command_id}",
                                         params={"wait": 10})).status_code != 200:
            assert time.monotonic() < deadline, f"no outcome for the last command: {outcome.text}"
        head = outcome.json()["last_seq"]
        timeline = f"{ports.url('auditor')}/v1/audit/models/{last_command.model}/timeline"
        while not (await http.get(timeline, params={"after_seq": head - 1})).json().get("events"):
            assert time.monotonic() < deadline, "the auditor is behind"
            await asyncio.sleep(0.5)
    return head


async def ask(url: str, questions: list[dict], latencies: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1),
                                 headers=as_auditor()) as http:
        for params in questions:
            started = time.perf_counter()
            response = await http.get("state", params=params)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text


def summary(name: str, latencies: list[float]) -> str:
    q = statistics.quantiles(sorted(latencies), n=100, method="inclusive")
    return f"{name}: {len(latencies)} queries, p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms"


async def build(endpoints: EngineEndpoints, ports: ServicePorts, events: int) -> tuple[str, datetime, datetime]:
    """A fresh model with about `events` events: its name, first and last instants."""
    model = f"audit-bench-{uuid4().hex[:6]}"
    commands = history(model, events, datetime.now(timezone.utc) - timedelta(days=2))
    async with command_publisher(endpoints, sign=signed) as publisher:
        await publisher.publish_many((command, None) for command in commands)
    await head_after(ports, commands[-1])
    return model, commands[0].issued_at, commands[-1].issued_at


async def span(ports: ServicePorts, model: str) -> tuple[datetime, datetime]:
    """The first and last instants of an existing model (asking no state of it)."""
    async with httpx.AsyncClient(base_url=f"{ports.url('auditor')}/v1/audit", timeout=60,
                                 headers=as_auditor()) as auditor:
        head = (await auditor.get("/events", params={"model": model, "limit": 1})).json()["total"]
        [first] = (await auditor.get(f"/models/{model}/timeline", params={"limit": 1})).json()["events"]
        [last] = (await auditor.get(f"/models/{model}/timeline", params={"after_seq": head - 1})).json()["events"]
    return datetime.fromisoformat(first["occurred_at"]), datetime.fromisoformat(last["occurred_at"])


def restart_auditor(ports: ServicePorts, env: dict[str, str] | None = None) -> None:
    stack = LocalStack()
    services.stop("auditor", stack)
    services.start("auditor", stack, env=env)
    services.wait_ready("auditor", stack, ports)


async def after_restart(ports: ServicePorts, model: str, at: datetime, questions: list[dict],
                        stored: bool) -> tuple[float, int, list[float]]:
    """Restart the auditor with its stored checkpoints on or off; after one
    other request (the new process's own warm-up), time its first as-of answer
    and then `questions`. The first answer's ms and seq, the others' latencies."""
    await asyncio.to_thread(restart_auditor, ports, None if stored else {"MODELOG_AUDIT_CHECKPOINT_EVERY": "0"})
    url = f"{ports.url('auditor')}/v1/audit/models/{model}/"
    async with httpx.AsyncClient(base_url=url, timeout=120, headers=as_auditor()) as auditor:
        assert (await auditor.get("timeline", params={"limit": 1})).status_code == 200
        started = time.perf_counter()
        answer = await auditor.get("state", params={"at": at.isoformat()})
        took = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, answer.text
    latencies: list[float] = []
    await ask(url, questions, latencies)
    return took, answer.json()["seq"], latencies


async def after_restarts(ports: ServicePorts, model: str, at: datetime, questions: list[dict]) -> None:
    if services.running_pid(LocalStack(), "auditor") is None:
        print("first as-of answer after an auditor restart: skipped, the auditor is not a process of this local stack")
        return
    runs: dict[bool, list[tuple[float, int, list[float]]]] = {False: [], True: []}
    try:
        for _ in range(ROUNDS):
            for stored in (False, True):
                runs[stored].append(await after_restart(ports, model, at, questions, stored))
    finally:
        await asyncio.to_thread(restart_auditor, ports)  # as it ran before the benchmark
    [seq] = {seq for _, seq, _ in runs[False] + runs[True]}

    def first(stored: bool) -> str:
        took = [ms for ms, _, _ in runs[stored]]
        return f"median {statistics.median(took):.0f} ms ({', '.join(f'{ms:.0f}' for ms in took)})"

    print(f"first as-of answer after an auditor restart, at seq {seq} (target < 100 ms), {ROUNDS} restarts each: "
          f"before (memory only: folds from seq 0) {first(False)} -> after (PostgreSQL checkpoints) {first(True)}")
    for stored, name in ((False, "before (memory only)"), (True, "after (PostgreSQL checkpoints)")):
        print(summary(f"  then as-of queries after each restart, {name}", [ms for *_, lat in runs[stored] for ms in lat]))


async def main(events: int, queries: int, clients: int, model: str | None) -> None:
    endpoints, ports = EngineEndpoints(), ServicePorts()
    if model is None:
        model, start, last = await build(endpoints, ports, events)
    else:
        start, last = await span(ports, model)
    url = f"{ports.url('auditor')}/v1/audit/models/{model}/"
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=as_auditor()) as auditor:
        started = time.perf_counter()
        first = await auditor.get("state", params={"at": last.isoformat()})
        first_ms = (time.perf_counter() - started) * 1000
        assert first.status_code == 200, first.text
        head = first.json()["seq"]
    rng = random.Random(7)
    questions = [{"seq": rng.randint(0, head)} if i % 2 else
                 {"at": (start + (last - start) * rng.random()).isoformat()} for i in range(queries)]
    by_seq, by_instant = [], []
    await asyncio.gather(*(ask(url, [q for q in questions[c::clients] if "seq" in q], by_seq)
                           for c in range(clients)))
    await asyncio.gather(*(ask(url, [q for q in questions[c::clients] if "at" in q], by_instant)
                           for c in range(clients)))
    print(f"{model}: {head} events; the first as-of answer of this auditor process for it took "
          f"{first_ms:.0f} ms (from the nearest checkpoint, stored or in memory)")
    print(summary(f"as of a seq, {clients} keep-alive clients", by_seq))
    print(summary(f"as of an instant, {clients} keep-alive clients", by_instant))
    print(summary("all as-of queries (target p99 < 50 ms)", by_seq + by_instant))
    await after_restarts(ports, model, last, questions[:RESTART_QUERIES])


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000,
                     int(sys.argv[2]) if len(sys.argv) > 2 else 2_000,
                     int(sys.argv[3]) if len(sys.argv) > 3 else 1,
                     sys.argv[4] if len(sys.argv) > 4 else None))
