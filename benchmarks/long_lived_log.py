"""A log that lives for years, at scale: what a million events cost the stack.

    uv run python benchmarks/long_lived_log.py [--events 1000000] [--models 10000]
                                               [--busy-events 10000] [--direct]

Builds a log of EVENTS events over MODELS models with a registry's mix
(registrations, metric reports, tags, moves to Staging, requests for
Production granted by an approver after the requester's own approval is
refused, an alias following the champion, a tag deleted that is not there);
one model gets BUSY_EVENTS of them. Two ways to build it:

- through the promoter (the default): signed commands published to
  modelog.commands as the registrar publishes them, decided by the running
  promoter; the promoter's resident memory is read once the log is built;
- --direct: the same commands decided here with the real decide/evolve,
  each event signed with the stack's log-signing key and appended to its
  model's partition of modelog.events as the promoter's Kafka principal (from
  the stack's secrets). Much faster; the log is the same kind of log, but the
  running promoter has not held it, so its memory is read after a restore.

`--restarts ROUNDS` builds nothing: it restarts the promoter on the log
built before, ROUNDS times, and with `--before COMMIT` that commit's
promoter in turn, for a before and after of the restart in one run.

Then, against the stack the MODELOG_* environment points at (start one with
`modelog up`; the figures are noisy on a shared machine, so the load average
is printed beside them):

1. promoter restart to deciding: SIGKILL, start, and the time until a fresh
   command is decided, folding the whole log (snapshots off), and then, when
   the promoter writes snapshots, from its newest snapshot plus the tail, in
   the same run; its resident memory after each restore;
2. rebuild: `modelog projections rebuild`'s replay into a fresh schema, events/s;
3. `modelog audit verify --no-seals`, reading Kafka included, events/s;
4. first as-of answer after an auditor restart, on the busy model.

The issue's "before" figures are printed beside each one measured here.
"""

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from pathlib import Path
from uuid import UUID, uuid4

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from baseline import env_at
from log_end import consumer_at_end

from modelog_contract.codec import decode_event, encode
from modelog_contract.domain import ModelState, decide, evolve
from modelog_contract.domain.commands import (
    ApproveTransition,
    Command,
    DeleteTag,
    RegisterVersion,
    ReportMetrics,
    RequestTransition,
    SetAlias,
    SetTag,
)
from modelog_contract.domain.types import Actor, Artifact
from modelog_contract.signing import sign_event
from modelog_platform import engines, services
from modelog_platform.adapters.commands import authorization_header
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import model_partition
from modelog_platform.identity.dev import dev_token, signed
from modelog_platform.log_signing import signing_key
from modelog_platform.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    EngineEndpoints,
    LocalStack,
    LogWriterSettings,
    ServicePorts,
)

PIPELINE = Actor(subject="longlog-pipeline", roles=("publisher", "approver"))
REVIEWER = Actor(subject="longlog-reviewer", roles=("approver",))
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SNAPSHOTS_OFF = {"MODELOG_SNAPSHOT_EVERY_EVENTS": "0", "MODELOG_SNAPSHOT_EVERY_S": "0"}
SNAPSHOT_SOON = {"MODELOG_SNAPSHOT_EVERY_S": "1"}
# The figures measured before this work, for the lines below.
BEFORE = {"restart": "~4 min (extrapolated)", "rss": "unbounded (600 MB at ~80k commands)",
          "rebuild": "18,000 events/s", "verify": "6,700 events/s", "as_of": "~2.5 s"}


def model_commands(model: str, rng: random.Random) -> Iterator[Command]:
    """A model's commands over its life, without end, each valid when it comes
    or refused for a reason a real client meets."""
    clock = (T0 + timedelta(seconds=i) for i in range(10**9))

    def make(kind, actor=PIPELINE, **fields) -> Command:
        return kind(command_id=uuid4(), model=model, actor=actor, issued_at=next(clock), **fields)

    version = 0
    while True:
        version += 1
        digest = sha256(f"{model}/{version}".encode()).hexdigest()
        yield make(RegisterVersion, run_id=f"run-{version}", params={"depth": str(version % 7)},
                   artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=version),
                   metrics={"auc": round(rng.uniform(0.6, 0.99), 4)})
        yield make(ReportMetrics, version=version, metrics={"f1": round(rng.uniform(0.5, 0.9), 4)})
        yield make(SetTag, version=version, key="dataset", value=f"snapshot-{version}")
        yield make(SetTag, key=f"team-{version % 4}", value=f"owner {version}")
        yield make(RequestTransition, version=version, to_stage="Staging")
        request = make(RequestTransition, version=version, to_stage="Production")
        yield request
        if rng.random() < 0.2:
            yield make(ApproveTransition, request_id=request.command_id)  # refused: self_approval
        yield make(ApproveTransition, actor=REVIEWER, request_id=request.command_id)
        yield make(SetAlias, alias="champion", version=version)
        if rng.random() < 0.1:
            yield make(DeleteTag, key="never-set")  # refused: tag_not_found


class Log:
    """The log as it is planned: each model's state, decided here, command by command."""

    def __init__(self, events: int, models: int, busy_events: int):
        run, self.rng = uuid4().hex[:6], random.Random()
        self.names = [f"longlog-{run}-{i:05d}" for i in range(models)]
        self.busy, self.target, self.busy_target = self.names[0], events, min(busy_events, events // 2)
        self.scripts = {m: model_commands(m, self.rng) for m in self.names}
        self.states: dict[str, ModelState] = {}
        self.events = 0

    def next_decisions(self) -> Iterator[tuple[Command, list]]:
        """(command, its events) until the log holds the events asked for."""
        busy_share = self.busy_target / self.target
        while self.events < self.target:
            model = self.busy if self.rng.random() < busy_share else self.rng.choice(self.names[1:])
            command = next(self.scripts[model])
            state = self.states.get(model) or ModelState(name=model)
            decided = decide(state, command)
            for event in decided:
                state = evolve(state, event)
            self.states[model], self.events = state, self.events + len(decided)
            yield command, decided


def promoter_endpoints(stack: LocalStack) -> EngineEndpoints:
    """The promoter's own Kafka principal, from the stack's secrets."""
    saved = dict(os.environ)
    os.environ.update(engines.service_env(EngineEndpoints(), stack, "promoter"))
    try:
        return EngineEndpoints()
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def build_direct(log: Log, stack: LocalStack) -> None:
    endpoints, key = promoter_endpoints(stack), signing_key(LogWriterSettings())
    producer = AIOKafkaProducer(**kafka_connection(endpoints), enable_idempotence=True, acks="all",
                                linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    partitions = endpoints.topic_partitions
    try:
        pending = []
        for _, decided in log.next_decisions():
            for event in decided:
                pending.append(await producer.send(
                    EVENTS_TOPIC, encode(sign_event(event, key)), key=event.model.encode(),
                    partition=model_partition(event.model, partitions)))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
                progress(log)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def build_through_promoter(log: Log, endpoints: EngineEndpoints) -> None:
    """Signed commands, decided by the running promoter; waits for every outcome."""
    follower = await consumer_at_end(endpoints, fetch_max_wait_ms=500)
    producer = AIOKafkaProducer(**kafka_connection(endpoints), enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    wanted: set[UUID] = set()
    closed = 0
    try:
        batch: list = []
        for command, _ in log.next_decisions():
            command, token = signed(command.model_copy(update={"issued_at": datetime.now(timezone.utc)}), ttl_s=3600)
            wanted.add(command.command_id)
            batch.append(await producer.send(COMMANDS_TOPIC, encode(command), key=command.model.encode(),
                                             headers=authorization_header(token)))
            if len(batch) >= 1000:
                await asyncio.gather(*batch)
                batch.clear()
                closed += await drain(follower, wanted)
                progress(log, f"{closed:,} decided")
        await asyncio.gather(*batch)
        while closed < len(wanted):
            closed += await drain(follower, wanted)
    finally:
        await producer.stop()
        await follower.stop()


def progress(log: Log, extra: str = "") -> None:
    if log.events // 50_000 != (log.events - 5000) // 50_000:
        print(f"  ... {log.events:,} events planned {extra}", flush=True)


async def drain(consumer: AIOKafkaConsumer, wanted: set[UUID]) -> int:
    closed = 0
    for batch in (await consumer.getmany(timeout_ms=200)).values():
        for record in batch:
            event = decode_event(record.value)
            if event.closes_decision and event.command_id in wanted:
                closed += 1
    return closed


def resident_mb(stack: LocalStack, service: str) -> float:
    pid = services.running_pid(stack, service)
    status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


async def restart_to_deciding(stack: LocalStack, ports: ServicePorts, endpoints: EngineEndpoints, model: str,
                              env: dict[str, str]) -> tuple[float, float]:
    """SIGKILL the promoter, start it with `env`, publish a fresh command at
    once: (seconds from the start to its decision, seconds to ready)."""
    services.kill("promoter", stack)
    follower = await consumer_at_end(endpoints, fetch_max_wait_ms=500)
    producer = AIOKafkaProducer(**kafka_connection(endpoints), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        started = time.monotonic()
        services.start("promoter", stack, env)
        command, token = signed(SetTag(command_id=uuid4(), model=model, actor=PIPELINE,
                                       issued_at=datetime.now(timezone.utc), key="restarted", value=str(started)),
                                ttl_s=3600)
        await producer.send_and_wait(COMMANDS_TOPIC, encode(command), key=command.model.encode(),
                                     headers=authorization_header(token))
        await asyncio.to_thread(services.wait_ready, "promoter", stack, ports, 1800)
        ready = time.monotonic() - started
        while not await drain(follower, {command.command_id}):
            pass
        return time.monotonic() - started, ready
    finally:
        await producer.stop()
        await follower.stop()


async def busy_model_on_the_stack(endpoints: EngineEndpoints) -> str:
    """The busy model of the newest long-lived log on the stack, named as Log names it."""
    consumer = AIOKafkaConsumer(**kafka_connection(endpoints), isolation_level="read_committed",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(EVENTS_TOPIC, p) for p in range(endpoints.topic_partitions)]
        consumer.assign(partitions)
        for tp, end in (await consumer.end_offsets(partitions)).items():
            consumer.seek(tp, max(0, end - 100))
        for batch in (await consumer.getmany(timeout_ms=5000)).values():
            for record in batch:
                if found := re.fullmatch(rb"longlog-([0-9a-f]{6})-\d{5}", record.key or b""):
                    return f"longlog-{found.group(1).decode()}-00000"
    finally:
        await consumer.stop()
    raise SystemExit("no long-lived log at the end of this stack's log: build one first")


async def restarts_only(rounds: int, before: str) -> None:
    """Restart to deciding from snapshots, this checkout's promoter and
    `before`'s in turn, on the log already built."""
    stack, ports, endpoints = LocalStack(), ServicePorts(), EngineEndpoints()
    model = await busy_model_on_the_stack(endpoints)
    print(f"restarts on the log already built, a command on {model} each; {load()}", flush=True)
    versions = {"now": {}, before: {"PYTHONPATH": env_at(before)["PYTHONPATH"]}} if before else {"now": {}}
    for round_ in range(1, rounds + 1):
        for name, env in versions.items():
            decided, ready = await restart_to_deciding(stack, ports, endpoints, model, env)
            print(f"  round {round_}, promoter at {name:>8}: decided {decided:.2f}s after its start, "
                  f"ready after {ready:.2f}s; {load()}", flush=True)
    services.kill("promoter", stack)
    services.start("promoter", stack)  # as the stack runs it
    services.wait_ready("promoter", stack, ports, 1800)


async def decide_one_per_partition(endpoints: EngineEndpoints, log: Log) -> None:
    """A decision in every partition: each has something new for a snapshot."""
    by_partition = {model_partition(m, endpoints.topic_partitions): m for m in reversed(log.names)}
    follower = await consumer_at_end(endpoints, fetch_max_wait_ms=500)
    producer = AIOKafkaProducer(**kafka_connection(endpoints), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        wanted = set()
        for model in by_partition.values():
            command, token = signed(SetTag(command_id=uuid4(), model=model, actor=PIPELINE,
                                           issued_at=datetime.now(timezone.utc), key="snapshot", value="due"),
                                    ttl_s=3600)
            wanted.add(command.command_id)
            await producer.send_and_wait(COMMANDS_TOPIC, encode(command), key=command.model.encode(),
                                         headers=authorization_header(token))
        closed = 0
        while closed < len(wanted):
            closed += await drain(follower, wanted)
    finally:
        await producer.stop()
        await follower.stop()


def promoter_status(ports: ServicePorts) -> dict:
    return httpx.get(ports.url("promoter") + "/v1/status", timeout=10).json()


def wait_for_snapshots(ports: ServicePorts, partitions: int, timeout_s: float = 900) -> dict:
    """Until the promoter reports a snapshot written for every partition."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        report = promoter_status(ports).get("snapshots", {})
        written = [p for p, r in report.items() if isinstance(r, dict) and r.get("newest_written")]
        if len(written) >= partitions:
            return report
        time.sleep(2)
    return promoter_status(ports).get("snapshots", {})


def wait_for_auditor(ports: ServicePorts, log: Log, timeout_s: float = 3600) -> float:
    """Until the auditor answers as of the busy model's head; returns the seconds waited."""
    started, head = time.monotonic(), log.states[log.busy].seq
    with httpx.Client(base_url=ports.url("auditor") + "/v1/audit", timeout=120,
                      headers={"Authorization": f"Bearer {dev_token('longlog', 'reader')}"}) as auditor:
        while auditor.get(f"/models/{log.busy}/state", params={"seq": head}).status_code != 200:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError("the auditor did not catch up")
            time.sleep(2)
    return time.monotonic() - started


def first_as_of_after_restart(stack: LocalStack, ports: ServicePorts, log: Log) -> tuple[float, float, int]:
    services.stop("auditor", stack)
    services.start("auditor", stack)
    services.wait_ready("auditor", stack, ports, timeout_s=600)
    head = log.states[log.busy].seq
    seq = random.randint(head // 2, head)
    with httpx.Client(base_url=ports.url("auditor") + "/v1/audit", timeout=600,
                      headers={"Authorization": f"Bearer {dev_token('longlog', 'reader')}"}) as auditor:
        started = time.perf_counter()
        first = auditor.get(f"/models/{log.busy}/state", params={"seq": seq})
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        auditor.get(f"/models/{log.busy}/state", params={"seq": random.randint(1, head)})
        second_s = time.perf_counter() - started
    first.raise_for_status()
    return first_s, second_s, seq


async def rebuild_rate(endpoints: EngineEndpoints) -> tuple[int, float]:
    from projector.rebuild import drop_schema, projector_login, rebuild

    schema = f"bench_longlog_{uuid4().hex[:8]}"
    started = time.monotonic()
    replayed = await rebuild(endpoints, schema)
    seconds = time.monotonic() - started
    await drop_schema(projector_login(endpoints), schema)
    return replayed.events, seconds


def verify_rate() -> tuple[str, float]:
    started = time.monotonic()
    verdict = subprocess.run([sys.executable, "-m", "modelog", "audit", "verify", "--no-seals"],
                             capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})
    seconds = time.monotonic() - started
    lines = (verdict.stdout or verdict.stderr).strip().splitlines()
    return (lines[-1] if lines else f"exit {verdict.returncode}"), seconds


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> None:
    stack, ports, endpoints = LocalStack(), ServicePorts(), EngineEndpoints()
    mode = "direct (pre-decided events appended as the promoter)" if args.direct else "through the promoter"
    print(f"long-lived log: {args.events:,} events over {args.models:,} models, busy model "
          f"{args.busy_events:,} events; built {mode}; kafka {endpoints.kafka_bootstrap}; {load()}", flush=True)
    log = Log(args.events, args.models, args.busy_events)
    started = time.monotonic()
    await (build_direct(log, stack) if args.direct else build_through_promoter(log, endpoints))
    built = time.monotonic() - started
    print(f"built: {log.events:,} events over {len(log.states):,} models ({log.states[log.busy].seq:,} on the busy "
          f"model) in {built:.0f}s, {log.events / built:,.0f} events/s ({mode}); {load()}", flush=True)
    if not args.direct:
        print(f"promoter resident memory, log built through it: {resident_mb(stack, 'promoter'):.0f} MB "
              f"(before: {BEFORE['rss']}; goal < 400 MB at 1M events over 10,000 models)")

    full, full_ready = await restart_to_deciding(stack, ports, endpoints, log.busy, SNAPSHOTS_OFF)
    print(f"promoter restart to deciding, folding the whole log (snapshots off): {full:.1f}s "
          f"(ready after {full_ready:.1f}s; before: {BEFORE['restart']} at 1M; goal < 5 s); "
          f"resident memory after the restore {resident_mb(stack, 'promoter'):.0f} MB; {load()}", flush=True)

    if "snapshots" in promoter_status(ports):
        await restart_to_deciding(stack, ports, endpoints, log.busy, SNAPSHOT_SOON)
        await decide_one_per_partition(endpoints, log)
        report = wait_for_snapshots(ports, endpoints.topic_partitions)
        print(f"snapshots written: {report}", flush=True)
        snap, snap_ready = await restart_to_deciding(stack, ports, endpoints, log.busy, {})
        print(f"promoter restart to deciding, newest snapshot + tail: {snap:.1f}s (ready after {snap_ready:.1f}s; "
              f"whole log in this run: {full:.1f}s); resident memory after the restore "
              f"{resident_mb(stack, 'promoter'):.0f} MB; restored from: {promoter_status(ports).get('snapshots')}; "
              f"{load()}", flush=True)
    else:
        print("this promoter writes no snapshots: no snapshot + tail figure")

    waited = wait_for_auditor(ports, log)
    print(f"(auditor caught up with the log {waited:.0f}s after the restarts)", flush=True)

    events, seconds = await rebuild_rate(endpoints)
    print(f"rebuild: {events:,} events in {seconds:.1f}s, {events / seconds:,.0f} events/s "
          f"(before: {BEFORE['rebuild']}; goal >= 50,000); {load()}", flush=True)

    verdict, seconds = verify_rate()
    counted = re.search(r"([\d,]+) events", verdict)
    checked = int(counted.group(1).replace(",", "")) if counted else 0
    print(f"modelog audit verify, reading Kafka included: {checked:,} events in {seconds:.1f}s, "
          f"{checked / seconds:,.0f} events/s (before: {BEFORE['verify']}; goal >= 50,000): {verdict!r}; {load()}",
          flush=True)

    first, second, seq = first_as_of_after_restart(stack, ports, log)
    print(f"first as-of answer after an auditor restart, busy model ({log.states[log.busy].seq:,} events) "
          f"at seq {seq:,}: {first * 1000:.0f} ms, the next at another seq {second * 1000:.0f} ms "
          f"(before: {BEFORE['as_of']} at 10k events; goal < 100 ms); {load()}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--busy-events", type=int, default=10_000)
    parser.add_argument("--direct", action="store_true",
                        help="append pre-decided events as the promoter instead of publishing commands")
    parser.add_argument("--restarts", type=int, metavar="ROUNDS",
                        help="build nothing: restart the promoter ROUNDS times on the log already built")
    parser.add_argument("--before", metavar="COMMIT", help="with --restarts: that commit's promoter in turn")
    arguments = parser.parse_args()
    asyncio.run(restarts_only(arguments.restarts, arguments.before) if arguments.restarts else main(arguments))
