"""A long-lived log, built through the real promoter, stays cheap and correct.

Signed commands are published straight to modelog.commands, as the registrar
publishes them, over many models with a registry's mix: registrations, metric
reports, tags on models and versions, moves to Staging, requests for
Production that an approver grants (now and then first refused: the requester
approving their own request), an alias following each new champion, a tag
deleted that is not there, and client retries of the same command id. One
model is busy: a tenth of all commands. The promoter's resident memory is
sampled all along.

The promoter runs with snapshots often enough that every partition has one
before it is SIGKILLed, and a tail of commands lands after them. Restarted, it
must restore from its snapshots plus that tail, and decide a new command on
every model exactly as the domain decides it on a fold of the log (seq, chain
and payload), and a retry of an old command must yield nothing. The
projector's read models must equal a rebuild from the log, `modelog audit
verify` must find the log intact, and the auditor's answers as of random points
must equal folds of the log up to them.

Size: MODELOG_LONGHAUL_COMMANDS (default sized for CI); the benchmark
benchmarks/long_lived_log.py takes the same road to a million events.
"""

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from auditor.api import state_json
from modelog_contract.codec import decode_event, encode
from modelog_contract.domain import ModelState, decide
from modelog_contract.domain.chain import first_broken_link
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
from modelog_contract.domain.decider import fold
from modelog_contract.domain.events import CommandPosition, Event, PolicySet
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, PolicyInForce
from modelog_contract.domain.types import Actor, Artifact
from modelog_contract.proven import Refused, proven_event
from modelog_platform import services
from modelog_platform.adapters.commands import authorization_header
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import model_partition, read_committed
from modelog_platform.identity.dev import signed
from modelog_platform.log_signing import trusted_keys
from modelog_platform.settings import COMMANDS_TOPIC, EVENTS_TOPIC, LocalStack, LogTrustSettings
from promoter.snapshot_store import covered_offset
from tests.e2e.helpers import bearer, token_for

pytestmark = [pytest.mark.engines, pytest.mark.longhaul]

# Sized so the whole module stays within a few minutes on a small CI machine;
# raise it to live with a longer log.
COMMANDS = int(os.environ.get("MODELOG_LONGHAUL_COMMANDS", "2000"))
COMMANDS_PER_MODEL = 40        # a model's share, apart from the busy one
BUSY_SHARE = 0.10              # of all commands, on one model
RETRY_SHARE = 0.03             # published a second time, same command id and token
AS_OF_POINTS = 40
OUTCOME_STALL_S = 60           # no new outcome this long: the promoter is stuck
SETTLE_S = 3                   # no new event of ours this long: nothing late is coming
RSS_SAMPLE_S = 0.2
# A snapshot per partition every this many events: fewer than a partition's
# share of a CI-sized log, and more than the tail's one command per model a
# partition gets, so every partition has a snapshot and most have a tail after it.
SNAPSHOTS_OFTEN = {"MODELOG_SNAPSHOT_EVERY_EVENTS": str(max(10, COMMANDS // 200)), "MODELOG_SNAPSHOT_EVERY_S": "0"}
# The budget for the promoter holding 1M events over 10,000 models:
# a log a few hundred times smaller must stay well inside it (see
# test_the_promoter_memory_stays_bounded for the tighter per-event bound).
RSS_BUDGET_MB = 400
# Growth of the promoter's memory per event it decided, beyond what it held
# when it was ready: the budget spread over its million events
# (400 MB / 1M events), with headroom for Kafka's client buffers and the
# allocator, which do not grow with the log.
GROWTH_PER_EVENT_BYTES = 400
GROWTH_HEADROOM_MB = 60

ALICE = Actor(subject="longhaul-alice", roles=("publisher", "approver"))  # registers, requests
BOB = Actor(subject="longhaul-bob", roles=("approver",))       # reviews


@dataclass
class Plan:
    models: list[str]
    busy: str
    sequence: list[tuple[Command, str]]  # in publishing order, retries included
    retried: set[UUID]

    @property
    def distinct_ids(self) -> set[UUID]:
        return {c.command_id for c, _ in self.sequence}


@dataclass
class Memory:
    """The promoter's resident set, sampled from /proc by a thread of the test."""

    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, bytes)
    stop: threading.Event = field(default_factory=threading.Event)

    def follow(self) -> threading.Thread:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        return thread

    def _sample(self) -> None:
        while not self.stop.is_set():
            if (rss := resident_bytes(self.pid)) is not None:
                self.samples.append((time.monotonic(), rss))
            self.stop.wait(RSS_SAMPLE_S)

    @property
    def peak(self) -> int:
        return max(rss for _, rss in self.samples)


@dataclass
class LongLog:
    plan: Plan
    events: dict[str, list[Event]]   # my models' events, by seq, as the log holds them
    memory: Memory
    ready_rss: int                   # the promoter's resident set when the build began
    build_s: float


def resident_bytes(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB"


# --- the plan: a registry's commands over many models ---------------------------------------


def model_script(model: str, budget: int, rng: random.Random) -> list[Command]:
    """Up to `budget` commands a model sees over its life, each valid when it
    comes (or refused for a reason a real client meets), in the order decided."""
    out: list[Command] = []
    version = 0
    while len(out) < budget:
        version += 1
        digest = sha256(f"{model}/{version}".encode()).hexdigest()
        out.append(command(RegisterVersion, model, ALICE, run_id=f"run-{version}",
                           artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest,
                                             size=version),
                           metrics={"auc": round(rng.uniform(0.6, 0.99), 4)}, params={"depth": str(version % 7)}))
        out.append(command(ReportMetrics, model, ALICE, version=version,
                           metrics={"f1": round(rng.uniform(0.5, 0.9), 4), "latency_ms": rng.randint(3, 40)}))
        out.append(command(SetTag, model, ALICE, version=version, key="dataset", value=f"snapshot-{version}"))
        out.append(command(SetTag, model, ALICE, key=f"team-{version % 4}", value=f"owner {version}"))
        out.append(command(RequestTransition, model, ALICE, version=version, to_stage="Staging"))
        request = command(RequestTransition, model, ALICE, version=version, to_stage="Production")
        out.append(request)
        if rng.random() < 0.2:  # four eyes: refused, self_approval
            out.append(command(ApproveTransition, model, ALICE, request_id=request.command_id))
        out.append(command(ApproveTransition, model, BOB, request_id=request.command_id, comment="looks good"))
        out.append(command(SetAlias, model, ALICE, alias="champion", version=version))
        if rng.random() < 0.1:  # refused, tag_not_found
            out.append(command(DeleteTag, model, ALICE, key="never-set"))
    return out[:budget]


def command(kind, model: str, actor: Actor, **fields) -> Command:
    return kind(command_id=uuid4(), model=model, actor=actor, issued_at=datetime.now(timezone.utc), **fields)


def make_plan(total: int, rng: random.Random) -> Plan:
    run = uuid4().hex[:8]
    busy_budget = int(total * BUSY_SHARE)
    count = max(2, (total - busy_budget) // COMMANDS_PER_MODEL)
    models = [f"longhaul-{run}-{i:05d}" for i in range(count)]
    budgets = {models[0]: busy_budget} | {m: (total - busy_budget) // count for m in models[1:]}
    scripts = {m: iter(model_script(m, budgets[m], rng)) for m in models}
    # Interleaved at random, each model's own commands in their order.
    slots = [m for m in models for _ in range(budgets[m])]
    rng.shuffle(slots)
    sequence = [signed(next(scripts[m]), ttl_s=3600) for m in slots]
    # Client retries: the very same record again, a little later.
    retried = rng.sample(range(len(sequence)), int(len(sequence) * RETRY_SHARE))
    for index in sorted(retried, reverse=True):
        at = min(len(sequence), index + rng.randrange(1, 500))
        sequence.insert(at, sequence[index])
    return Plan(models=models, busy=models[0], sequence=sequence,
                retried={sequence[i][0].command_id for i in retried})


# --- publishing and following ---------------------------------------------------------------


async def publish(producer: AIOKafkaProducer, commands: list[tuple[Command, str]]) -> list:
    """Each command as the registrar publishes it: keyed by model, its token in
    the authorization header. Returns each record's metadata (partition, offset)."""
    placed = []
    for start in range(0, len(commands), 200):
        sent = [await producer.send(COMMANDS_TOPIC, key=c.model.encode(), value=encode(c),
                                    headers=authorization_header(token))
                for c, token in commands[start:start + 200]]
        placed += await asyncio.gather(*sent)
    return placed


class Outcomes:
    """Follows modelog.events from the beginning: the decisions closed for our models."""

    def __init__(self, engines, models: list[str]):
        self.engines, self.keys = engines, {m.encode() for m in models}
        self.closed: set[UUID] = set()
        self.last_event = time.monotonic()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(**kafka_connection(self.engines),
                                    isolation_level="read_committed", enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(EVENTS_TOPIC, p) for p in range(self.engines.topic_partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    for record in batch:
                        if record.key in self.keys:
                            self.last_event = time.monotonic()
                            event = decode_event(record.value)
                            if event.closes_decision:
                                self.closed.add(event.command_id)
        finally:
            await consumer.stop()

    async def wait_for(self, wanted: set[UUID]) -> None:
        """Until every wanted command is decided; fails if outcomes stop coming."""
        last_count, last_progress = len(self.closed), time.monotonic()
        while not wanted <= self.closed:
            if len(self.closed) != last_count:
                last_count, last_progress = len(self.closed), time.monotonic()
            if time.monotonic() - last_progress > OUTCOME_STALL_S:
                missing = wanted - self.closed
                pytest.fail(f"{len(missing)} of {len(wanted)} commands without an outcome, none new for "
                            f"{OUTCOME_STALL_S}s (e.g. {sorted(map(str, missing))[:5]})")
            await asyncio.sleep(0.2)
        while time.monotonic() - self.last_event < SETTLE_S:  # a late duplicate would show now
            await asyncio.sleep(0.5)


async def events_of(engines, models: list[str]) -> dict[str, list[Event]]:
    keys = {m.encode() for m in models}
    by_model: dict[str, list[Event]] = defaultdict(list)
    for record in await read_committed(engines, EVENTS_TOPIC):
        if record.key in keys:
            event = decode_event(record.value)
            by_model[event.model].append(event)
    for events in by_model.values():
        events.sort(key=lambda e: e.seq)
    return dict(by_model)


async def default_policy_in_force(engines) -> PolicyInForce:
    """The registry-wide default policy as the promoter follows it: the last
    PolicySet the promoter signed on its stream (other tests may have set one)."""
    trusted, in_force = trusted_keys(LogTrustSettings()), PolicyInForce()
    for record in await read_committed(engines, EVENTS_TOPIC):
        if record.key == DEFAULT_POLICY_STREAM.encode():
            event = proven_event(record.value, trusted)
            if not isinstance(event, Refused) and isinstance(event.payload, PolicySet):
                in_force = PolicyInForce(policy=event.payload.policy, seq=event.seq)
    return in_force


# --- fixtures: the log built, then the promoter killed and restarted ------------------------


@pytest.fixture(scope="module")
def snapshotting(stack):
    """The stack's promoter, restarted to write snapshots often; as it was after."""
    local = LocalStack()
    services.stop("promoter", local)
    services.start("promoter", local, SNAPSHOTS_OFTEN)
    services.wait_ready("promoter", local, stack, timeout_s=300)
    yield local
    services.stop("promoter", local)
    services.start("promoter", local)
    services.wait_ready("promoter", local, stack, timeout_s=300)


@pytest.fixture(scope="module")
async def long_log(engines, stack, snapshotting) -> LongLog:
    local = snapshotting
    pid = services.running_pid(local, "promoter")
    assert pid is not None, "the stack runs a promoter"
    plan = make_plan(COMMANDS, random.Random())
    memory = Memory(pid)
    ready_rss = resident_bytes(pid) or 0
    outcomes = Outcomes(engines, plan.models)
    follower = asyncio.create_task(outcomes.run())
    producer = AIOKafkaProducer(**kafka_connection(engines), enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    sampler = memory.follow()
    started = time.monotonic()
    try:
        await publish(producer, plan.sequence)
        await outcomes.wait_for(plan.distinct_ids)
    finally:
        build_s = time.monotonic() - started
        memory.stop.set()
        sampler.join()
        await producer.stop()
        follower.cancel()
    events = await events_of(engines, plan.models)
    total = sum(map(len, events.values()))
    print(f"\nlong log: {len(plan.sequence):,} commands ({len(plan.retried)} retried) over {len(plan.models)} "
          f"models -> {total:,} events ({len(events[plan.busy]):,} on the busy model) in {build_s:.1f}s "
          f"({len(plan.sequence) / build_s:,.0f} commands/s); promoter RSS {megabytes(ready_rss)} at the start, "
          f"peak {megabytes(memory.peak)}; load average {os.getloadavg()[0]:.1f}")
    return LongLog(plan, events, memory, ready_rss, build_s)


@dataclass
class Restarted:
    events: dict[str, list[Event]]           # after the new commands
    before: dict[str, ModelState]            # the fold each new command was decided on
    new: dict[str, tuple[Command, CommandPosition]]
    retries: list[UUID]
    in_force: PolicyInForce
    restart_s: float
    rss_after_restore: int
    snapshots: dict[str, dict]               # the restarted promoter's report, per partition
    tail: dict[int, int]                     # partition -> offset of the last tail event there


def promoter_status(stack) -> dict:
    return httpx.get(stack.url("promoter") + "/v1/status", timeout=10).json()


def partitions_of(models: list[str], partitions: int) -> set[str]:
    """The partitions (as the promoter's report keys them) that hold these models:
    other tests' models, and other snapshots, live in the others."""
    return {str(model_partition(model, partitions)) for model in models}


async def wait_for_snapshots(stack, ours: set[str], timeout_s: float = 180) -> dict:
    """Until every partition holding our models has a snapshot written."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = promoter_status(stack)["snapshots"]
        if report and all(report[p]["newest_written"] for p in ours):
            return report
        assert time.monotonic() < deadline, f"no snapshot of every partition after {timeout_s}s: {report}"
        await asyncio.sleep(1)


async def decided_now(engines, models: list[str], commands: list[tuple[Command, str]],
                      known: set[UUID] | frozenset[UUID] = frozenset()) -> list:
    """Publish, wait for every outcome of the commands not `known` to be decided already."""
    outcomes = Outcomes(engines, models)
    outcomes.closed = set(known)
    follower = asyncio.create_task(outcomes.run())
    producer = AIOKafkaProducer(**kafka_connection(engines), enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    try:
        placed = await publish(producer, commands)
        await outcomes.wait_for({c.command_id for c, _ in commands} - set(known))
    finally:
        await producer.stop()
        follower.cancel()
    return placed


async def last_offsets(engines, command_ids: set[UUID]) -> dict[int, int]:
    """partition -> offset of the last event in modelog.events of these commands."""
    last: dict[int, int] = {}
    for record in await read_committed(engines, EVENTS_TOPIC):
        if decode_event(record.value).command_id in command_ids:
            last[record.partition] = max(last.get(record.partition, -1), record.offset)
    return last


@pytest.fixture(scope="module")
async def restarted(engines, stack, snapshotting, long_log: LongLog) -> Restarted:
    """Once every partition has a snapshot, a tail of commands after them; then
    the promoter SIGKILLed and started again, one new command per model, each
    expecting the model's seq in the log, and a few retries of old ones."""
    local, plan = snapshotting, long_log.plan
    await wait_for_snapshots(stack, partitions_of(plan.models, engines.topic_partitions))
    tail = [signed(command(SetTag, m, ALICE, key="tail", value="after the snapshot"), ttl_s=3600)
            for m in plan.models]
    await decided_now(engines, plan.models, tail)
    tail_offsets = await last_offsets(engines, {c.command_id for c, _ in tail})

    started = time.monotonic()
    await asyncio.to_thread(services.kill, "promoter", local)
    await asyncio.to_thread(services.start, "promoter", local, SNAPSHOTS_OFTEN)
    await asyncio.to_thread(services.wait_ready, "promoter", local, stack, 300)
    restart_s = time.monotonic() - started
    pid = services.running_pid(local, "promoter")
    assert pid is not None
    rss_after_restore = resident_bytes(pid) or 0
    ours = partitions_of(plan.models, engines.topic_partitions)
    snapshots = {p: r for p, r in promoter_status(stack)["snapshots"].items() if p in ours}
    print(f"\npromoter killed and ready again in {restart_s:.1f}s, RSS {megabytes(rss_after_restore)} after "
          f"restore; restored from {[r['restored_from'] for r in snapshots.values()]}")

    events = await events_of(engines, plan.models)
    before = {m: fold(m, mine) for m, mine in events.items()}
    in_force = await default_policy_in_force(engines)
    fresh = [signed(command(RegisterVersion, m, ALICE, expected_seq=before[m].seq, run_id="after-restart",
                            artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{'0' * 64}", sha256="0" * 64,
                                              size=1)), ttl_s=3600)
             for m in plan.models]
    retries = random.sample(plan.sequence, max(3, len(plan.models) // 10))
    placed = await decided_now(engines, plan.models, fresh + retries, known=plan.distinct_ids)
    new = {c.model: (c, CommandPosition(partition=p.partition, offset=p.offset))
           for (c, _), p in zip(fresh, placed[:len(fresh)], strict=True)}
    return Restarted(await events_of(engines, plan.models), before, new, [c.command_id for c, _ in retries],
                     in_force, restart_s, rss_after_restore, snapshots, tail_offsets)


# --- the tests ------------------------------------------------------------------------------


def test_every_command_has_one_outcome_and_every_chain_holds(long_log: LongLog):
    plan, events = long_log.plan, long_log.events
    closing = Counter(e.command_id for mine in events.values() for e in mine if e.closes_decision)
    assert set(closing) == plan.distinct_ids
    assert {c: n for c, n in closing.items() if n > 1} == {}, "a command decided twice"
    for model in plan.models:
        mine = events[model]
        assert [e.seq for e in mine] == list(range(1, len(mine) + 1)), f"{model}: seq gap"
        assert first_broken_link(mine) is None, f"{model}: broken chain"
        state = fold(model, mine)
        production = state.versions_in("Production")
        assert len(production) <= 1, f"{model}: {production} all in Production"
    # The mix was the one planned: promotions happened, refusals too.
    types = Counter(e.type for mine in events.values() for e in mine)
    assert types["StageChanged"] > 0 and types["AliasSet"] > 0 and types["ApprovalGranted"] > 0, types
    reasons = Counter(e.payload.reason for mine in events.values() for e in mine if e.type == "CommandRejected")
    assert set(reasons) <= {"self_approval", "tag_not_found"}, reasons


def test_the_promoter_memory_stays_bounded(long_log: LongLog):
    """Resident memory is behaviour: the promoter holds state per model, not per
    event of history, so a long log must not make it grow with every event."""
    events = sum(map(len, long_log.events.values()))
    allowed_growth = GROWTH_HEADROOM_MB * 2**20 + GROWTH_PER_EVENT_BYTES * events
    grown = long_log.memory.peak - long_log.ready_rss
    assert long_log.memory.peak < RSS_BUDGET_MB * 2**20, f"peak {megabytes(long_log.memory.peak)}"
    assert grown <= allowed_growth, (
        f"the promoter grew {megabytes(grown)} while deciding {events:,} events "
        f"(allowed {megabytes(allowed_growth)}: {GROWTH_HEADROOM_MB} MB + {GROWTH_PER_EVENT_BYTES} B/event)")


def test_a_restarted_promoter_decides_as_the_fold_of_the_log(restarted: Restarted, long_log: LongLog):
    for model, (new, position) in restarted.new.items():
        expected = decide(restarted.before[model], new, position, restarted.in_force)
        mine = restarted.events[model]
        got = [e for e in mine if e.command_id == new.command_id]
        assert [e.model_dump(mode="json", exclude={"signature"}) for e in got] == \
               [e.model_dump(mode="json", exclude={"signature"}) for e in expected], model
        assert got[0].seq == restarted.before[model].seq + 1 and got[0].type == "VersionRegistered", got[0]
        assert first_broken_link(mine) is None, f"{model}: broken chain after the restart"
    closing = Counter(e.command_id for mine in restarted.events.values() for e in mine if e.closes_decision)
    assert [c for c in restarted.retries if closing[c] != 1] == [], "a retry decided again after the restart"
    # A restored promoter holds what a running one held: the same budget.
    assert restarted.rss_after_restore < RSS_BUDGET_MB * 2**20, megabytes(restarted.rss_after_restore)


def test_the_restart_restored_from_snapshots_plus_the_tail(restarted: Restarted):
    report = restarted.snapshots
    assert report and all(r["restored_from"] for r in report.values()), report
    assert all(r["refused"] == [] for r in report.values()), report
    # The tail: events after the snapshot each partition restored from, folded from the log.
    with_tail = [p for p, last in restarted.tail.items() if last >= covered_offset(report[str(p)]["restored_from"])]
    assert with_tail, f"no partition restored a tail after its snapshot: {restarted.tail} {report}"


def wait_for_projector(stack, restarted: Restarted) -> None:
    """Each new command's outcome projected: its partition is projected up to it."""
    with httpx.Client(base_url=stack.url("projector"), headers=bearer("longhaul", "reader"), timeout=60) as projector:
        for new, _ in restarted.new.values():
            response = projector.get(f"/v1/commands/{new.command_id}", params={"wait": 30})
            assert response.status_code == 200, response.text


def modelog(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelog", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "300", "MODELOG_TOKEN": token_for("olga", "auditor")})


def test_a_rebuild_equals_the_live_read_models(stack, restarted: Restarted):
    wait_for_projector(stack, restarted)
    rebuilt = modelog("projections", "rebuild")
    print(rebuilt.stdout)
    assert rebuilt.returncode == 0 and "match" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr


def test_audit_verify_finds_the_long_log_intact(restarted: Restarted, long_log: LongLog):
    verdict = modelog("audit", "verify")
    print(verdict.stdout.splitlines()[-1:] if verdict.stdout else verdict.stderr)
    if verdict.returncode != 0:
        # Other tests of the session append forgeries on purpose; none may be ours.
        broken = [line for line in verdict.stdout.splitlines() if "BROKEN" in line]
        assert broken, verdict.stdout + verdict.stderr
        ours = [line for line in broken if any(f" {m} " in line for m in long_log.plan.models)]
        assert ours == [], "\n".join(ours[:10])
    else:
        assert "intact" in verdict.stdout, verdict.stdout


def test_as_of_answers_equal_folds_of_the_log(stack, restarted: Restarted, long_log: LongLog):
    rng, plan = random.Random(), long_log.plan
    points = [(plan.busy, len(restarted.events[plan.busy]))]
    points += [(m, rng.randint(0, len(restarted.events[m])))
               for m in rng.choices(plan.models, k=AS_OF_POINTS // 2)]
    points += [(plan.busy, rng.randint(1, len(restarted.events[plan.busy]))) for _ in range(AS_OF_POINTS // 2)]
    with httpx.Client(base_url=stack.url("auditor") + "/v1/audit", headers=bearer("longhaul", "reader"),
                      timeout=60) as auditor:
        # The auditor has the whole log once it answers as of the busy model's head.
        deadline = time.monotonic() + 120
        while (answer := auditor.get(f"/models/{plan.busy}/state", params={"seq": points[0][1]})).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.5)
        for model, seq in points:
            answer = auditor.get(f"/models/{model}/state", params={"seq": seq})
            assert answer.status_code == 200, answer.text
            expected = fold(model, restarted.events[model][:seq])
            assert answer.json() == {"model": model, "seq": seq, "state": json.loads(state_json(expected))}, (
                f"{model} as of seq {seq}")
