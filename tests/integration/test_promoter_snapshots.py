"""The promoter's snapshots against the real engines: a log built through the
real promoter (which writes snapshots as it goes), then each way a snapshot can
be wrong planted in S3. Every restore refuses the bad one, names why, falls
back to an older one or to the whole log, and ends with exactly the states a
fold of the whole log gives. A model whose head only the loop checks (the
tail never touched it) is caught before its first decision."""

import asyncio
import base64
import gzip
import hashlib
import json
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timezone
from hashlib import sha256
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from modelog_contract.codec import decode_event, encode
from modelog_contract.domain.commands import RegisterVersion, SetPolicy
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, Policy
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform import services
from modelog_platform.adapters.commands import authorization_header
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import log_bounds, model_partition, read_committed
from modelog_platform.identity.dev import signed
from modelog_platform.log_signing import signing_key, trusted_keys
from modelog_platform.settings import COMMANDS_TOPIC, EVENTS_TOPIC, LocalStack, ServicePorts
from promoter.default_policy import DefaultPolicyFollower
from promoter.restore import Restored, restore_partitions
from promoter.settings import PromoterSettings
from promoter.snapshot_store import SnapshotStore, covered_offset, snapshot_key
from promoter.snapshots import SNAPSHOT_SIGNATURE_CONTEXT, decode

pytestmark = pytest.mark.engines

ACTOR = Actor(subject="snapshot-test", roles=("ci",))
ADMIN = Actor(subject="snapshot-test-admin", roles=("admin",))
MODELS = 24
FIRST_ROUND, TAIL_ROUND = 480, 120  # the tail touches the first half of the models only


def default_policy() -> SetPolicy:
    """The built-in default set explicitly: it gives the default policy's
    stream events to snapshot and read on from, and changes nothing for the
    session's other tests."""
    return SetPolicy(command_id=uuid4(), model=DEFAULT_POLICY_STREAM, actor=ADMIN,
                     issued_at=datetime.now(timezone.utc), policy=Policy())


def register(model: str, i: int) -> RegisterVersion:
    digest = sha256(f"{model}/{i}".encode()).hexdigest()
    return RegisterVersion(command_id=uuid4(), model=model, actor=ACTOR, issued_at=datetime.now(timezone.utc),
                           artifact=Artifact(uri=f"s3://modelog-artifacts/sha256/{digest}", sha256=digest, size=1))


async def publish_and_wait(engines, commands: list[RegisterVersion | SetPolicy], timeout_s: float = 120) -> None:
    producer = AIOKafkaProducer(**kafka_connection(engines), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for command in commands:
            command, token = signed(command, ttl_s=3600)
            await producer.send(COMMANDS_TOPIC, key=command.model.encode(), value=encode(command),
                                headers=authorization_header(token))
        await producer.flush()
    finally:
        await producer.stop()
    wanted, deadline = {c.command_id for c in commands}, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        closed = {e.command_id for e in map(decode_event, (r.value for r in await read_committed(engines, EVENTS_TOPIC)))
                  if e.closes_decision}
        if wanted <= closed:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"{len(wanted - closed)} commands have no outcome after {timeout_s}s")


def start_promoter(env: dict[str, str]) -> None:
    local = LocalStack()
    services.stop("promoter", local)
    services.start("promoter", local, env=env)
    services.wait_ready("promoter", local, ServicePorts(), timeout_s=180)


def partition_status(partition: int, timeout_s: float = 60) -> dict:
    """The promoter's snapshot report of `partition`, once it holds it: ready
    with some partitions, it may get the rest only when the group's old member
    is gone."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = httpx.get(f"{ServicePorts().url('promoter')}/v1/status", timeout=10).json()["snapshots"]
        if str(partition) in report or time.monotonic() > deadline:
            return report[str(partition)]
        time.sleep(0.5)


def model_names(partitions: int) -> list[str]:
    """A run's model names, drawn until a model the tail touches (the first
    half) and two it leaves alone share a partition, so every check below has
    both, and the head checks a victim each."""
    while True:
        run = uuid4().hex[:8]
        models = [f"snap-{run}-{i:02d}" for i in range(MODELS)]
        if len({model_partition(m, partitions) for m in (models[0], *models[MODELS // 2:MODELS // 2 + 2])}) == 1:
            return models


@pytest.fixture(scope="module")
def built(engines):
    """A log whose partitions each have several snapshots and a tail after the
    newest, which touches only the first half of the models. Returns the
    models and the partition the checks plant snapshots in."""
    local = LocalStack()
    ran_before = services.running_pid(local, "promoter") is not None
    models = model_names(engines.topic_partitions)
    # Every 5 events, and every second once idle: the newest snapshot of a
    # partition then covers all the rounds, and only the tail comes after it.
    start_promoter({"MODELOG_SNAPSHOT_EVERY_EVENTS": "5", "MODELOG_SNAPSHOT_EVERY_S": "1",
                    "MODELOG_SNAPSHOT_KEEP": "4"})
    try:
        # In rounds: each ends a batch in every partition, and so writes a snapshot of it.
        for start in range(0, FIRST_ROUND, FIRST_ROUND // 4):
            commands = [register(models[i % MODELS], i) for i in range(start, start + FIRST_ROUND // 4)]
            if start < FIRST_ROUND // 2:  # the default policy's partition gets two snapshots at least
                commands.append(default_policy())
            asyncio.run(publish_and_wait(engines, commands))
            time.sleep(2.5)  # a snapshot is written after its batch, or a second after it: let it land
        start_promoter({"MODELOG_SNAPSHOT_EVERY_EVENTS": "0", "MODELOG_SNAPSHOT_EVERY_S": "0"})
        tail = [register(models[i % (MODELS // 2)], FIRST_ROUND + i) for i in range(TAIL_ROUND)] + [default_policy()]
        asyncio.run(publish_and_wait(engines, tail))
    finally:
        services.stop("promoter", local)
    store = SnapshotStore(engines)
    # A partition with snapshots to fall back on and a model of the tail;
    # better still one with a model the tail leaves alone too.
    by_partition: dict[int, list[str]] = {}
    for model in models:
        by_partition.setdefault(model_partition(model, engines.topic_partitions), []).append(model)

    def fit(p: int) -> tuple[int, int]:
        untouched = [m for m in by_partition[p] if models.index(m) >= MODELS // 2]
        return len(untouched), len(by_partition[p])
    partition = max((p for p, ms in by_partition.items()
                     if any(models.index(m) < MODELS // 2 for m in ms) and len(store.keys(p)) >= 2), key=fit)
    yield models, partition
    if ran_before:
        services.start("promoter", local)
        services.wait_ready("promoter", local, ServicePorts(), timeout_s=180)


@pytest.fixture
def planted(engines, built):
    """The partition's snapshots put back as they were after each test."""
    _, partition = built
    store = SnapshotStore(engines)
    kept = {key: store.get(key) for key in store.keys(partition)}
    yield store, partition, sorted(kept, key=covered_offset, reverse=True)
    for key in store.keys(partition):
        if key not in kept:
            store.client.remove_object(store.bucket, key)
    for key, data in kept.items():
        store.put(key, data)


def restore(engines, partition: int, store: SnapshotStore | None) -> Restored:
    return asyncio.run(restore_partitions(PromoterSettings(), [partition], snapshots=store))[partition]


def resigned(data: bytes, meta_change: Callable[[dict], None] = lambda meta: None,
             line_change: Callable[[list[bytes]], None] = lambda lines: None) -> bytes:
    """A real snapshot changed, then signed again with the promoter's own key:
    only the check under test can refuse it."""
    header, body = gzip.decompress(data).split(b"\n", 1)
    lines = body.split(b"\n")
    meta = json.loads(lines[0])
    meta_change(meta)
    line_change(lines)
    body = b"\n".join([json.dumps(meta, separators=(",", ":")).encode(), *lines[1:]])
    digest = hashlib.sha256(body).hexdigest()
    signature = signing_key(PromoterSettings()).sign(SNAPSHOT_SIGNATURE_CONTEXT + digest.encode())
    header = json.dumps(json.loads(header) | {"sha256": digest, "signature": base64.b64encode(signature).decode()})
    return gzip.compress(header.encode() + b"\n" + body)


def assert_falls_back(engines, store, partition, refused_key: str, why: str, to: str | None) -> Restored:
    whole = restore(engines, partition, None)
    restored = restore(engines, partition, store)
    assert whole.snapshot is None and whole.states
    assert any(key == refused_key and why in reason for key, reason in restored.refused), restored.refused
    assert restored.snapshot == to
    assert restored.states == whole.states
    assert restored.next_command == whole.next_command
    assert restored.head_offsets == whole.head_offsets and restored.last_event == whole.last_event
    return restored


def test_the_promoter_writes_snapshots_and_keeps_the_newest_few(engines, planted):
    store, partition, keys = planted
    assert 2 <= len(keys) <= 4
    newest = decode(store.get(keys[0]), trusted_keys(PromoterSettings()))
    assert newest.partition == partition and snapshot_key(partition, newest.events_offset) == keys[0]
    restored = restore(engines, partition, store)
    assert restored.snapshot == keys[0] and not restored.refused
    assert restored.states == restore(engines, partition, None).states


def test_corrupt_bytes_fall_back_to_the_older_snapshot(engines, planted):
    store, partition, keys = planted
    data = bytearray(store.get(keys[0]))
    data[len(data) // 2] ^= 0xFF
    store.put(keys[0], bytes(data))
    assert_falls_back(engines, store, partition, keys[0], "", keys[1])


def test_a_truncated_object_falls_back(engines, planted):
    store, partition, keys = planted
    store.put(keys[0], store.get(keys[0])[:200])
    assert_falls_back(engines, store, partition, keys[0], "gzip", keys[1])


def test_a_snapshot_from_before_a_schema_change_falls_back(engines, planted):
    store, partition, keys = planted
    store.put(keys[0], resigned(store.get(keys[0]), lambda meta: meta.update(state_schema="model-state/0")))
    assert_falls_back(engines, store, partition, keys[0], "schema", keys[1])


def test_a_snapshot_ahead_of_the_log_falls_back(engines, planted):
    store, partition, keys = planted
    end = asyncio.run(log_bounds(engines, EVENTS_TOPIC))[1][partition]
    ahead = snapshot_key(partition, end + 50)
    store.put(ahead, resigned(store.get(keys[0]), lambda meta: meta.update(events_offset=end + 50)))
    assert_falls_back(engines, store, partition, ahead, "beyond the log's committed end", keys[0])


def test_a_snapshot_whose_last_event_is_not_the_logs_falls_back(engines, planted):
    store, partition, keys = planted

    def other_hash(meta: dict) -> None:
        meta["last_event"]["hash"] = "f" * 64
    store.put(keys[0], resigned(store.get(keys[0]), other_hash))
    assert_falls_back(engines, store, partition, keys[0], "is not the last event it names", keys[1])


def test_a_wrong_head_the_tail_continues_from_falls_back(engines, planted, built):
    models, _ = built
    store, partition, keys = planted
    touched = {m for m in models[: MODELS // 2]}

    def wrong_head(lines: list[bytes]) -> None:
        for i, line in enumerate(lines[1:], 1):
            offset, name, seq, _, state = line.split(b"\t", 4)
            if name.decode() in touched:
                fields = json.loads(state) | {"head_hash": "e" * 64}
                lines[i] = b"\t".join([offset, name, seq, b"e" * 64, json.dumps(fields, separators=(",", ":")).encode()])
                return
        raise AssertionError("no model of the tail in the snapshot")
    store.put(keys[0], resigned(store.get(keys[0]), line_change=wrong_head))
    assert_falls_back(engines, store, partition, keys[0], "does not chain from its head", keys[1])


def test_no_usable_snapshot_at_all_is_a_fold_of_the_whole_log(engines, planted):
    store, partition, keys = planted
    for key in keys:
        store.put(key, b"garbage")
    restored = assert_falls_back(engines, store, partition, keys[-1], "gzip", None)
    assert [key for key, _ in restored.refused] == keys


def test_a_missing_snapshot_is_a_fold_of_the_whole_log(engines, planted):
    store, partition, keys = planted
    for key in keys:
        store.client.remove_object(store.bucket, key)
    restored = restore(engines, partition, store)
    assert restored.snapshot is None and not restored.refused
    assert restored.states == restore(engines, partition, None).states


@pytest.mark.parametrize("damage, why", [
    (lambda head, fields: ("d" * 64, fields | {"head_hash": "d" * 64}), "head hash"),
    # Signed, so only a promoter bug could write it: still never decided on.
    (lambda head, fields: (head, fields | {"seq": "a while"}), "does not read back"),
], ids=["stale head", "state that does not read back"])
def test_a_wrong_head_no_tail_event_proves_is_caught_before_that_models_first_decision(
        engines, planted, built, damage, why):
    """The loop reads the head at the recorded offset before deciding for the
    model (and reads its state then: a restore leaves it as the snapshot's
    JSON); a mismatch refuses the snapshot, and the partition is restored
    again without it: the decision is made on the log's state."""
    models, _ = built
    store, partition, keys = planted
    untouched = [m for m in models[MODELS // 2:] if model_partition(m, engines.topic_partitions) == partition]
    # A model no tail event has reached yet: an earlier case of this test decided for its own victim.
    fresh = restore(engines, partition, store)
    victim = next(m for m in untouched if m in fresh.unverified)

    def stale_head(lines: list[bytes]) -> None:
        for i, line in enumerate(lines[1:], 1):
            offset, name, seq, head, state = line.split(b"\t", 4)
            if name.decode() == victim:
                head, fields = damage(head.decode(), json.loads(state))
                lines[i] = b"\t".join([offset, name, seq, head.encode(),
                                       json.dumps(fields, separators=(",", ":")).encode()])
                return
        raise AssertionError(f"{victim} is not in the snapshot")
    store.put(keys[0], resigned(store.get(keys[0]), line_change=stale_head))
    whole = restore(engines, partition, None)
    restored = restore(engines, partition, store)
    assert restored.snapshot == keys[0] and victim in restored.unverified  # restore alone cannot see it
    assert victim in restored.states.stored  # nor did it read the victim's state

    start_promoter({"MODELOG_SNAPSHOT_EVERY_EVENTS": "0", "MODELOG_SNAPSHOT_EVERY_S": "3600"})
    try:
        command = register(victim, 10_000)
        asyncio.run(publish_and_wait(engines, [command]))
        status = partition_status(partition)
    finally:
        services.stop("promoter", LocalStack())
    outcome = [decode_event(r.value) for r in asyncio.run(read_committed(engines, EVENTS_TOPIC))
               if r.key == victim.encode()][-1]
    assert outcome.command_id == command.command_id
    assert (outcome.seq, outcome.prev_hash) == (whole.states[victim].seq + 1, whole.states[victim].head_hash)
    assert status["restored_from"] != keys[0]
    assert any(r["snapshot"] == keys[0] and why in r["why"] for r in status["refused"]), status


def follow(store: SnapshotStore | None) -> DefaultPolicyFollower:
    """A promoter's follower of the default policy, run until it has read the
    policy's stream to the log's end."""
    async def caught_up() -> DefaultPolicyFollower:
        follower = DefaultPolicyFollower(PromoterSettings(), store)
        task = asyncio.create_task(follower.run())
        try:
            await asyncio.wait_for(follower.caught_up.wait(), timeout=60)
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        return follower
    return asyncio.run(caught_up())


@pytest.fixture
def policy_snapshots(engines, built):
    """The default policy partition's snapshots, newest first, put back as
    they were after each test."""
    partition = model_partition(DEFAULT_POLICY_STREAM, engines.topic_partitions)
    store = SnapshotStore(engines)
    kept = {key: store.get(key) for key in store.keys(partition)}
    yield store, sorted(kept, key=covered_offset, reverse=True)
    for key, data in kept.items():
        store.put(key, data)


def test_the_default_policy_is_read_on_from_its_partitions_newest_snapshot(engines, policy_snapshots):
    store, keys = policy_snapshots
    assert len(keys) >= 2
    partition = model_partition(DEFAULT_POLICY_STREAM, engines.topic_partitions)
    stream = [r for r in asyncio.run(read_committed(engines, EVENTS_TOPIC))
              if r.partition == partition and r.key == DEFAULT_POLICY_STREAM.encode()]
    whole, seeded = follow(None), follow(store)
    assert whole.started_from is None and seeded.started_from == keys[0]
    assert whole.in_force == seeded.in_force and whole.in_force.seq == decode_event(stream[-1].value).seq
    # The fixture's last PolicySet came after every snapshot: read from the log's tail, not the snapshot.
    assert covered_offset(keys[0]) <= stream[-1].offset
    assert decode(store.get(keys[0]), trusted_keys(PromoterSettings())).head_offsets[DEFAULT_POLICY_STREAM] \
        < stream[-1].offset


@pytest.mark.parametrize("damage", ["corrupt bytes", "a policy head the log does not hold"])
def test_a_policy_snapshot_that_does_not_hold_is_passed_over_for_an_older_one(engines, policy_snapshots, damage):
    store, keys = policy_snapshots

    def wrong_head(lines: list[bytes]) -> None:
        for i, line in enumerate(lines[1:], 1):
            offset, name, seq, _, state = line.split(b"\t", 4)
            if name.decode() == DEFAULT_POLICY_STREAM:
                fields = json.loads(state) | {"head_hash": "e" * 64}
                lines[i] = b"\t".join([offset, name, seq, b"e" * 64, json.dumps(fields, separators=(",", ":")).encode()])
                return
        raise AssertionError("the default policy is not in the snapshot")
    if damage == "corrupt bytes":
        store.put(keys[0], store.get(keys[0])[:200])
    else:
        store.put(keys[0], resigned(store.get(keys[0]), line_change=wrong_head))
    seeded = follow(store)
    assert seeded.started_from == keys[1]
    assert seeded.in_force == follow(None).in_force


def test_with_no_usable_policy_snapshot_the_partition_is_read_from_its_first_offset(engines, policy_snapshots):
    store, keys = policy_snapshots
    for key in keys:
        store.put(key, b"garbage")
    seeded = follow(store)
    assert seeded.started_from is None
    assert seeded.in_force == follow(None).in_force
