"""How fast `modelog projections rebuild` replays a log: events/s, now and before its proofs checked chain runs.

    uv run python benchmarks/rebuild_speed.py [EVENTS] [--before=COMMIT]    # default 100000, 0c6bcfb

Makes a realistic log of about EVENTS events in memory with the real decider:
models of about 100 events each, every one registered version with metrics,
params and tags, a metrics report, a tag, a move to Staging, a request for
Production that its registrant tries to approve (refused: four-eyes) and a
reviewer approves (the previous Production version archived in the same
decision), an alias moved to it, and now and then a tag deleted or an unknown
version asked for (refused). Each event is signed by a writer key made for
the run. It publishes them, keyed by model, to a fresh topic on the stack the
MODELOG_* environment points at, then:

- times `rebuild(..., topic=...)` into a fresh schema at the commit before
  signatures were checked at the ends of chain runs, or at --before's
  (baseline.py: a subprocess from a worktree of it), then as it is now: read, prove (hash,
  signatures at run ends: decision 0013) and decode, fold in memory, then COPY into the
  new schema's bare tables, whose keys and indexes are built after;
- times each of those steps alone, in one process, with the cycle collector
  paused as in a rebuild, on the same topic (read once more, a partition at
  a time, as a rebuild reads it).

It prints events/s and CPU per event (this process and its children: worker
processes and the subprocess) with the load average (on a shared machine the
figures are noisy; before and after share one run's conditions), then drops
its schemas and topic.
"""

import asyncio
import os
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from uuid import uuid4

from aiokafka.admin import AIOKafkaAdminClient
from baseline import BEFORE_RUN_PROOFS, load, python_at
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from topics import publish_to_new_topic

from modelog_contract.codec import encode
from modelog_contract.domain import ModelState, decide, evolve
from modelog_contract.domain.commands import (
    ApproveTransition,
    DeleteTag,
    RegisterVersion,
    ReportMetrics,
    RequestTransition,
    SetAlias,
    SetTag,
)
from modelog_contract.domain.types import Actor, Artifact
from modelog_contract.proven import proven_or_refused
from modelog_contract.replay_proofs import CHUNK, chunk_problems
from modelog_contract.signing import TrustedKey, TrustedKeys, sign_event
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import log_bounds, partition_runs
from modelog_platform.adapters.postgres import connect
from modelog_platform.settings import EngineEndpoints
from projector.fold import ReadModelRows
from projector.rebuild import (
    cycle_collection_paused,
    drop_keys_and_indexes,
    fresh_schema,
    rebuild,
    run_in_one_transaction,
)

PIPELINE = Actor(subject="bench-pipeline", roles=("publisher", "approver"))
REVIEWER = Actor(subject="bench-reviewer", roles=("approver",))
EVENTS_PER_MODEL = 100
T0 = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)

# rebuild() at another commit, into a schema of its own, from this run's topic.
BEFORE = """
import asyncio, resource, sys, time
from cryptography.hazmat.primitives import serialization
from modelog_contract.signing import TrustedKey, TrustedKeys
from modelog_platform.settings import EngineEndpoints
from projector.rebuild import rebuild
trusted = TrustedKeys([TrustedKey(serialization.load_pem_public_key(sys.argv[3].encode()))])
started, used = time.perf_counter(), time.process_time()
replayed = asyncio.run(rebuild(EngineEndpoints(), sys.argv[1], topic=sys.argv[2], trusted=trusted))
print(replayed.events, time.perf_counter() - started, time.process_time() - used)
"""


def model_history(model: str, events: int) -> list:
    """About `events` decided events of one model (each version round yields about 11)."""
    state, out, clock = ModelState(name=model), [], (T0 + timedelta(seconds=i) for i in range(10 * events))

    def when(kind, actor=PIPELINE, **fields) -> list:
        nonlocal state
        command = kind(command_id=uuid4(), model=model, actor=actor, issued_at=next(clock), **fields)
        decided = decide(state, command)
        for event in decided:
            state = evolve(state, event)
        out.extend(decided)
        return decided

    n = 0
    while len(out) < events:
        n += 1
        digest = sha256(f"{model}/{n}".encode()).hexdigest()
        artifact = Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=n * 1000)
        when(RegisterVersion, artifact=artifact, run_id=f"run-{n}", params={"lr": "0.01", "depth": str(n)},
             metrics={"auc": 0.8 + n / 1000, "loss": 0.3}, tags={"team": "risk", "framework": "sklearn"})
        when(ReportMetrics, version=n, metrics={"auc_holdout": 0.79 + n / 1000})
        when(SetTag, version=n, key="validated", value="yes")
        when(RequestTransition, version=n, to_stage="Staging")
        [requested] = when(RequestTransition, version=n, to_stage="Production")
        request_id = requested.payload.request_id
        when(ApproveTransition, request_id=request_id)  # the registrant: refused, four-eyes
        when(ApproveTransition, actor=REVIEWER, request_id=request_id)
        when(SetAlias, alias="champion", version=n)
        if n % 3 == 0:
            when(DeleteTag, version=n - 1, key="validated")
            when(ReportMetrics, version=n + 5, metrics={"auc": 1.0})  # no such version: refused
    return out


def make_log(total: int, key: Ed25519PrivateKey) -> list:
    run = uuid4().hex[:6]
    return [sign_event(event, key) for m in range(max(1, total // EVENTS_PER_MODEL))
            for event in model_history(f"bench-{run}-{m:05d}", EVENTS_PER_MODEL)]


async def publish(endpoints: EngineEndpoints, topic: str, events: list) -> None:
    await publish_to_new_topic(endpoints, topic, [(e.model.encode(), encode(e)) for e in events])


async def drop(endpoints: EngineEndpoints, schemas: list[str], topic: str | None) -> None:
    conn = await connect(endpoints.postgres())
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    if topic is None:
        return
    admin = AIOKafkaAdminClient(**kafka_connection(endpoints))
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


def cpu() -> float:
    """CPU seconds of this process and of its children that have ended."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))


def timed(label: str, seconds: float, events: int, cpu_seconds: float | None = None) -> float:
    used = f", CPU {cpu_seconds / events * 1e6:5.0f} µs/event" if cpu_seconds is not None else ""
    print(f"  {label:<40} {seconds:7.2f} s  {events / seconds:>10,.0f} events/s{used}  ({load()})")
    return events / seconds


async def main(total: int = 100_000, before_commit: str = BEFORE_RUN_PROOFS) -> None:
    endpoints, run, key = EngineEndpoints(), uuid4().hex[:8], Ed25519PrivateKey.generate()
    trusted = TrustedKeys([TrustedKey(key.public_key())])
    topic, schemas = f"bench.rebuild.{run}", [f"bench_fold_{run}", f"bench_copy_{run}", f"bench_before_{run}"]

    started = time.perf_counter()
    events = make_log(total, key)
    print(f"decided {len(events):,} events of {len({e.model for e in events}):,} models "
          f"in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    await publish(endpoints, topic, events)
    print(f"published them to {topic} in {time.perf_counter() - started:.1f} s")

    try:
        print("rebuild() end to end:")
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        replayed_before, seconds, used = python_at(before_commit, "-c", BEFORE, schemas[2], topic,
                                                   pem).stdout.split()
        assert int(replayed_before) == len(events), (replayed_before, len(events))
        before = timed(f"at {before_commit} (before)", float(seconds), len(events), float(used))
        for workers in (0, os.cpu_count() or 1):
            started, used_before = time.perf_counter(), cpu()
            replayed = await rebuild(endpoints, schemas[0], topic=topic, trusted=trusted, workers=workers)
            seconds = time.perf_counter() - started
            assert replayed.events == len(events) and not replayed.skipped, (replayed.events, len(events))
            after = timed(f"now, {workers} worker processes", seconds, replayed.events, cpu() - used_before)
            print(f"  -> {after / before:.1f}x")
            await drop(endpoints, schemas[:1], None)

        print("its steps, one process:")
        started = time.perf_counter()
        _, ends = await log_bounds(endpoints, topic)
        runs = [run async for run in partition_runs(endpoints, topic, {p: (0, end) for p, end in ends.items()}, CHUNK)]
        records = [record for run in runs for record in run]
        timed("read (Kafka, a partition at a time)", time.perf_counter() - started, len(records))
        rows, proving, decoding, folding = ReadModelRows(), 0.0, 0.0, 0.0
        with cycle_collection_paused():
            for chunk in runs:  # as rebuild() does: a chunk proven, then each event decoded and folded
                started = time.perf_counter()
                problems = chunk_problems([record.value for record in chunk], trusted)
                proving += time.perf_counter() - started
                for record, problem in zip(chunk, problems, strict=True):
                    started = time.perf_counter()
                    event = proven_or_refused(record.value, problem)
                    decoded = time.perf_counter()
                    rows.apply(event)  # type: ignore[arg-type]
                    decoding += decoded - started
                    folding += time.perf_counter() - decoded
            timed("prove (parse, hashes, signatures at run ends)", proving, len(records))
            timed("decode (pydantic)", decoding, len(records))
            timed("fold (in memory)", folding, len(records))
            dsn = await fresh_schema(endpoints.postgres(), schemas[1])
            restore = await drop_keys_and_indexes(dsn)
            conn = await connect(dsn)
            try:
                started = time.perf_counter()
                await rows.copy_to(conn)
                timed("COPY (six bare tables, one transaction)", time.perf_counter() - started, len(records))
            finally:
                await conn.close()
            started = time.perf_counter()
            await run_in_one_transaction(dsn, restore)
            timed("keys and indexes, built after", time.perf_counter() - started, len(records))
    finally:
        await drop(endpoints, schemas, topic)


if __name__ == "__main__":
    before = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--before=")]
    asyncio.run(main(*(int(a) for a in sys.argv[1:] if not a.startswith("--")), *before[:1]))
