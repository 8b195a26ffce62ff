"""The promoter is SIGKILLed again and again in the middle of a burst of commands
(with client retries among them) and restarted each time: every command still
gets exactly one outcome in modelog.events, and every model's log stays a
gapless, verifiable chain.

Real broker, real promoter process (`python -m promoter`), no mocks. Only the
promoter is started here; the other services, if the session runs them, are
left alone, and a promoter that ran before the test runs again after it.
"""

import asyncio
import os
import random
import re
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from hashlib import sha256
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from modelog_contract.codec import decode_event, encode
from modelog_contract.domain.chain import first_broken_link
from modelog_contract.domain.commands import CreateModel, RegisterVersion
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform import services
from modelog_platform.adapters.commands import authorization_header
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.identity.dev import signed
from modelog_platform.settings import COMMANDS_TOPIC, EVENTS_TOPIC, LocalStack, ServicePorts

pytestmark = pytest.mark.engines

MODELS = 60
DISTINCT_COMMANDS = 5_000
CREATE_MODEL_COMMANDS = 20     # each on a model that exists by then: rejected model_exists
RETRY_SHARE = 0.02             # published twice with the same command_id
KILLS = 6
OUTCOME_WAIT_S = 120           # after the last restart ...
STALL_S = 20                   # ... extended while outcomes still arrive
OUTCOME_HARD_LIMIT_S = 600
SETTLE_S = 5                   # no new event of ours this long: the log is complete
ACTOR = Actor(subject="fault-test", roles=("ci",))


@dataclass
class Plan:
    """What is published, in which round (one round per promoter life)."""

    models: list[str]
    rounds: list[list[RegisterVersion | CreateModel]]
    registers_per_model: Counter
    creates_per_model: Counter
    retried: set[UUID]
    tokens: dict[UUID, str]  # each distinct command's own token (a retry carries the same)

    @property
    def distinct_ids(self) -> set[UUID]:
        return {c.command_id for r in self.rounds for c in r}


@dataclass
class Observed:
    """What the test has seen: kills, restarts and outcomes as they arrive."""

    t0: float = field(default_factory=time.monotonic)
    closed: set[UUID] = field(default_factory=set)
    kills: list[dict] = field(default_factory=list)
    last_restart: float = 0.0
    last_event: float = 0.0

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)


def make_plan(run: str, rng: random.Random) -> Plan:
    models = [f"kill-{run}-{i:03d}" for i in range(MODELS)]
    registers = DISTINCT_COMMANDS - CREATE_MODEL_COMMANDS
    sequence: list[RegisterVersion | CreateModel] = []
    # Every model's first command is a registration, so a later CreateModel
    # always meets an existing model.
    for i in range(registers):
        model = models[i] if i < MODELS else rng.choice(models)
        sequence.append(register(model, i))
    for model in rng.sample(models, CREATE_MODEL_COMMANDS):
        at = rng.randrange(MODELS + 1, len(sequence))
        sequence.insert(at, CreateModel(command_id=uuid4(), model=model, actor=ACTOR,
                                        issued_at=datetime.now(timezone.utc),
                                        description="created again"))
    tokens = {}
    for i, command in enumerate(sequence):
        sequence[i], tokens[command.command_id] = signed(command, ttl_s=3600)
    # Client retries: the same command again, a little later (same key, same
    # producer, so after the original in its partition).
    candidates = [c for c in sequence if isinstance(c, RegisterVersion)]
    retried = rng.sample(candidates, int(len(sequence) * RETRY_SHARE))
    for command in retried:
        at = sequence.index(command) + rng.randrange(1, 400)
        sequence.insert(min(at, len(sequence)), command)
    size = -(-len(sequence) // (KILLS + 1))
    return Plan(
        models=models,
        rounds=[sequence[i:i + size] for i in range(0, len(sequence), size)],
        registers_per_model=Counter(c.model for c in candidates),
        creates_per_model=Counter(c.model for c in sequence if isinstance(c, CreateModel)),
        retried={c.command_id for c in retried},
        tokens=tokens,
    )


def register(model: str, i: int) -> RegisterVersion:
    digest = sha256(f"{model}/{i}".encode()).hexdigest()
    return RegisterVersion(
        command_id=uuid4(), model=model, actor=ACTOR, issued_at=datetime.now(timezone.utc),
        artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=i + 1),
        run_id=f"run-{i}", metrics={"auc": round(0.5 + (i % 500) / 1000, 3)},
    )


@pytest.fixture
def promoter(engines):
    """The promoter as a process of its own; left as it was found at the end."""
    local, ports = LocalStack(), ServicePorts()
    ran_before = services.running_pid(local, "promoter") is not None
    services.start("promoter", local)
    services.wait_ready("promoter", local, ports, timeout_s=180)
    try:
        yield local, ports
    finally:
        if ran_before:
            services.start("promoter", local)
            services.wait_ready("promoter", local, ports, timeout_s=180)
        else:
            services.stop("promoter", local)


async def test_promoter_killed_mid_burst_decides_every_command_exactly_once(engines, promoter):
    local, ports = promoter
    rng = random.Random()
    plan = make_plan(uuid4().hex[:8], rng)
    seen = Observed()
    seen.last_restart = time.monotonic()
    log_start = log_size(local)
    keys = {m.encode() for m in plan.models}
    round_started = [asyncio.Event() for _ in plan.rounds]

    reader = asyncio.create_task(follow_outcomes(engines, keys, seen))
    producer = AIOKafkaProducer(**kafka_connection(engines),
                                enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        publisher = asyncio.create_task(publish(producer, plan, round_started))
        round_started[0].set()
        await kill_and_restart(local, ports, seen, round_started, rng)
        await publisher
        await producer.flush()
        await wait_for_outcomes(plan, seen)
        await settle(seen)
    finally:
        await producer.stop()
        reader.cancel()

    events = [decode_event(r.value) for r in await read_committed(engines, EVENTS_TOPIC)
              if r.key in keys]
    report = (f"kills (s since start, outcomes seen before the kill): {seen.kills}\n"
              f"promoter log:\n{promoter_log_excerpt(local, log_start)}")
    assert_exactly_once(plan, events, report)


async def group_members(engines) -> tuple[str, list[str]]:
    """The promoters' consumer group as the broker describes it: its state and member ids."""
    admin = AIOKafkaAdminClient(**kafka_connection(engines))
    await admin.start()
    try:
        [described] = await admin.describe_consumer_groups(["modelog-promoter"])
    finally:
        await admin.close()
    [(error, _group, state, _protocol_type, _protocol, members, *_)] = described.groups
    assert error == 0, error
    return state, [member[0] for member in members]


async def test_a_killed_promoter_started_again_is_the_same_static_member(engines, promoter):
    """The local stack names each promoter instance (MODELOG_PROMOTER_INSTANCE_ID),
    so Kafka holds it as a static member, whose member id begins with that name.
    A SIGKILLed promoter started again takes that membership back: the group
    holds it alone, not beside its dead self until that session expires."""
    local, ports = promoter
    state, [before] = await group_members(engines)
    assert state == "Stable" and re.fullmatch(r"promoter-[0-9a-f-]{36}", before), (state, before)
    pid = services.running_pid(local, "promoter")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while services.running_pid(local, "promoter") == pid:
        await asyncio.sleep(0.05)
    services.start("promoter", local)
    services.wait_ready("promoter", local, ports, timeout_s=180)
    state, [after] = await group_members(engines)
    assert state == "Stable" and re.fullmatch(r"promoter-[0-9a-f-]{36}", after) and after != before


async def publish(producer, plan: Plan, round_started: list[asyncio.Event]) -> None:
    """Each round's commands in small bursts, starting when that round's promoter is up."""
    for number, commands in enumerate(plan.rounds):
        await round_started[number].wait()
        for start in range(0, len(commands), 100):
            sent = [await producer.send(COMMANDS_TOPIC, key=c.model.encode(), value=encode(c),
                                        headers=authorization_header(plan.tokens[c.command_id]))
                    for c in commands[start:start + 100]]
            await asyncio.gather(*sent)
            await asyncio.sleep(0.02)


async def kill_and_restart(local, ports, seen: Observed, round_started, rng) -> None:
    """SIGKILL at a random moment once the promoter has made progress, restart, repeat."""
    for number in range(1, KILLS + 1):
        progress_from = len(seen.closed)
        deadline = time.monotonic() + 60
        while len(seen.closed) < progress_from + 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(rng.uniform(0.1, 1.5))
        kill = {"kill": number, "at_s": seen.now(), "outcomes_seen": len(seen.closed)}
        await asyncio.to_thread(services.kill, "promoter", local)
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        await asyncio.to_thread(services.start, "promoter", local)
        await asyncio.to_thread(services.wait_ready, "promoter", local, ports, 180)
        kill["ready_again_s"] = seen.now()
        seen.kills.append(kill)
        seen.last_restart = time.monotonic()
        if number < len(round_started):
            round_started[number].set()
        print(f"kill {kill}")
    for event in round_started:  # fewer kills than rounds: publish the rest now
        event.set()


async def follow_outcomes(engines, keys: set[bytes], seen: Observed) -> None:
    consumer = AIOKafkaConsumer(**kafka_connection(engines),
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(EVENTS_TOPIC, p) for p in range(engines.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    if record.key in keys:
                        seen.last_event = time.monotonic()
                        event = decode_event(record.value)
                        if event.closes_decision:
                            seen.closed.add(event.command_id)
    finally:
        await consumer.stop()


async def wait_for_outcomes(plan: Plan, seen: Observed) -> None:
    """Bounded: OUTCOME_WAIT_S after the last restart, longer only while outcomes
    still arrive (a slow machine), never past OUTCOME_HARD_LIMIT_S."""
    wanted = plan.distinct_ids
    last_count, last_progress = len(seen.closed), time.monotonic()
    while not wanted <= seen.closed:
        now = time.monotonic()
        if len(seen.closed) != last_count:
            last_count, last_progress = len(seen.closed), now
        stalled = now - last_progress > STALL_S
        if (now - seen.last_restart > OUTCOME_WAIT_S and stalled) or \
                now - seen.last_restart > OUTCOME_HARD_LIMIT_S:
            missing = wanted - seen.closed
            pytest.fail(f"{len(missing)} of {len(wanted)} commands have no outcome "
                        f"{now - seen.last_restart:.0f}s after the last restart "
                        f"(no new outcome for {now - last_progress:.0f}s; e.g. "
                        f"{sorted(map(str, missing))[:5]}); kills: {seen.kills}")
        await asyncio.sleep(0.2)


async def settle(seen: Observed) -> None:
    """Every outcome is in: keep following a while, so that a late duplicate (a
    decision made again by a restarted promoter) would be in the log we check."""
    while True:
        quiet_since = seen.last_event
        await asyncio.sleep(SETTLE_S)
        if seen.last_event == quiet_since:
            return


def assert_exactly_once(plan: Plan, events: list, report: str) -> None:
    wanted = plan.distinct_ids
    closing = Counter(e.command_id for e in events if e.closes_decision)
    duplicated = {c: n for c, n in closing.items() if n > 1}
    lost = wanted - set(closing)
    strangers = set(closing) - wanted
    assert not duplicated and not lost and not strangers, (
        f"outcomes: {len(duplicated)} duplicated {dict(list(duplicated.items())[:10])}, "
        f"{len(lost)} lost {sorted(map(str, lost))[:10]}, {len(strangers)} unknown\n{report}")

    positions = Counter((e.model, e.seq) for e in events)
    twice = [p for p, n in positions.items() if n > 1]
    assert not twice, f"(model, seq) written twice: {twice[:10]}\n{report}"

    by_model = defaultdict(list)
    for event in events:
        by_model[event.model].append(event)
    assert set(by_model) == set(plan.models)
    for model, mine in by_model.items():
        mine.sort(key=lambda e: e.seq)
        assert [e.seq for e in mine] == list(range(1, len(mine) + 1)), f"{model}: seq gap\n{report}"
        assert first_broken_link(mine) is None, f"{model}: broken chain\n{report}"
        versions = [e.payload.version for e in mine if e.type == "VersionRegistered"]
        assert versions == list(range(1, plan.registers_per_model[model] + 1)), (
            f"{model}: versions {versions[:5]}... for {plan.registers_per_model[model]} registrations")
        assert [e.type for e in mine].count("ModelCreated") == 1
        rejected = [e.payload.reason for e in mine if e.type == "CommandRejected"]
        assert rejected == ["model_exists"] * plan.creates_per_model[model], f"{model}: {rejected}"
        assert len(mine) == 1 + plan.registers_per_model[model] + plan.creates_per_model[model]
    # A retried command is decided once: its one outcome, no second.
    assert all(closing[c] == 1 for c in plan.retried)


def log_size(local) -> int:
    path = services.log_path(local, "promoter")
    return path.stat().st_size if path.exists() else 0


def promoter_log_excerpt(local, start: int, lines: int = 60) -> str:
    path = services.log_path(local, "promoter")
    if not path.exists():
        return "(no log)"
    with path.open("rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", "replace")
    notable = [line for line in text.splitlines()
               if re.search(r"WARN|ERROR|CRITICAL|Traceback|[Ff]enced|abort", line)]
    return "\n".join(notable[-lines:]) or "(nothing notable)"
