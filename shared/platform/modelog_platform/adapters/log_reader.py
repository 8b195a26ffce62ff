"""modelog's one way to read its Kafka log: every reader is a read_committed
consumer made here, reads between offsets go through here, and the partition
a model's records live in is computed here, with the partitioner the command
producer uses, so writers and readers cannot disagree on it.

A read_committed consumer sees only records of committed transactions (the
promoter appends each decision's events in one), and offsets have gaps where
aborted records and transaction markers sit.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.settings import EngineEndpoints

Progress = Callable[[int, int], None]  # (offsets read, offsets to read)

# Where a record's key puts it: Kafka's murmur2 partitioner, as every client
# computes it. The command producer is built with this very object, and
# model_partition asks it, so both sides always agree.
KEY_PARTITIONER = DefaultPartitioner()


def model_partition(model: str, partitions: int) -> int:
    """The partition of a topic with `partitions` partitions that holds `model`'s
    records: its commands, and (co-partitioned by the promoter) its events.
    A stream keyed like a model (the default policy's) lives by the same rule."""
    every = list(range(partitions))
    return KEY_PARTITIONER(model.encode(), every, every)


@dataclass(frozen=True)
class Fetching:
    """How long the broker may hold a fetch to fill it: it answers once
    `min_bytes` are there or `max_wait_ms` passed, whichever comes first; and
    how much of one partition a fetch brings at most (at least one whole
    record batch, whatever its size)."""

    min_bytes: int
    max_wait_ms: int
    partition_bytes: int = 1024 * 1024  # the consumer's default


# For a reader someone waits on (the promoter deciding a caller's command, the
# projector whose outcome the caller's answer waits for): the broker answers
# as soon as one record is there; the wait bounds only idle fetches, which are
# most of a follower's, and shorter ones spend CPU on Kafka and here polling.
AT_ONCE = Fetching(min_bytes=1, max_wait_ms=500)
# For a follower nobody waits on (the auditor's trail and denials, the
# sentinel's book of what is in Production): the broker
# holds a fetch until 64 KiB (some 40 events) are there or 100 ms passed, so a
# steady stream arrives in batches of tens of events and costs one PostgreSQL
# transaction each, not one every few events; 100 ms stays below what a
# person or a script asking the trail right after a write can notice.
IN_BATCHES = Fetching(min_bytes=64 * 1024, max_wait_ms=100)


# For a reader of a bounded range (a replay, a restore's tail). A range can
# end in transaction markers alone: the last offset of every partition the
# promoter writes is one. The broker holds a fetch that finds only markers
# for its whole wait, and the consumer's getmany returns no record for it,
# though the position moves past them; each would cost both waits in full,
# once per partition read (a second each at 500 ms). While records are
# there, the broker answers at once whatever the wait.
BOUNDED = Fetching(min_bytes=1, max_wait_ms=20)
POSITION_CHECK_MS = 50  # how long a bounded reader waits for records before it looks at its position again
# For a reader that seeks to single records (the promoter's checks of a
# snapshot's heads): a fetch in flight holds a seek back until the broker
# answers it, so the wait is short; and a record wanted alone should not
# bring the megabyte after it, which the consumer would parse record by
# record for nothing.
SEEKING = Fetching(min_bytes=1, max_wait_ms=5, partition_bytes=16 * 1024)


def committed_consumer(endpoints: EngineEndpoints, group: str | None = None,
                       rebalance_timeout_ms: int | None = None,
                       max_poll_interval_ms: int | None = None, fetching: Fetching = AT_ONCE,
                       group_instance_id: str | None = None) -> AIOKafkaConsumer:
    """A read_committed consumer that never commits offsets itself (modelog keeps
    positions in its own state). Without `group` it reads what it is assigned;
    with one, it shares the topic's partitions with the group's other members,
    as the static member `group_instance_id` if given.
    `fetching` says how the broker fills a fetch."""
    membership = {} if group is None else {
        "group_id": group,
        # A killed member holds its partitions until its session times out:
        # keep that short (the broker's minimum) so they move on quickly.
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 1500,
    }
    if rebalance_timeout_ms is not None:
        membership["rebalance_timeout_ms"] = rebalance_timeout_ms
    if max_poll_interval_ms is not None:
        membership["max_poll_interval_ms"] = max_poll_interval_ms
    if group_instance_id is not None:
        membership["group_instance_id"] = group_instance_id
    return AIOKafkaConsumer(
        **kafka_connection(endpoints), isolation_level="read_committed",
        enable_auto_commit=False,
        # Positions are always sought; were one ever reset, it goes to the start, never the end.
        auto_offset_reset="earliest",
        fetch_min_bytes=fetching.min_bytes, fetch_max_wait_ms=fetching.max_wait_ms,
        max_partition_fetch_bytes=fetching.partition_bytes,
        **membership,
    )


@asynccontextmanager
async def _started(consumer: AIOKafkaConsumer) -> AsyncIterator[AIOKafkaConsumer]:
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


def _assign(consumer: AIOKafkaConsumer, topic: str, partitions: Iterable[int]) -> None:
    tps = [TopicPartition(topic, p) for p in partitions]
    if tps:  # aiokafka's consumer can hang in stop() once it was assigned no partition at all
        consumer.assign(tps)


@asynccontextmanager
async def assigned_consumer(endpoints: EngineEndpoints, topic: str, partitions: Iterable[int],
                            fetching: Fetching = AT_ONCE) -> AsyncIterator[AIOKafkaConsumer]:
    """A started committed_consumer assigned `partitions` of `topic`, at no
    position yet: the caller seeks where it means to start."""
    async with _started(committed_consumer(endpoints, fetching=fetching)) as consumer:
        _assign(consumer, topic, partitions)
        yield consumer


_stopping: set[asyncio.Task] = set()  # held here until done: the loop keeps only weak references


def stop_in_background(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer that has read all it was asked for, without waiting.
    aiokafka's stop() waits for the fetch it has in flight, and now and then
    the broker answers that one only after tens of seconds; a promoter's
    restore (its tails) would wait that long with every record already in hand."""
    task = asyncio.create_task(consumer.stop())
    _stopping.add(task)
    task.add_done_callback(_stopping.discard)


async def partitions_of(endpoints: EngineEndpoints, topic: str) -> list[int]:
    """The topic's partitions as the broker has them (a copy of a log may differ)."""
    admin = AIOKafkaAdminClient(**kafka_connection(endpoints))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        if described["error_code"]:
            raise LookupError(f"no topic {topic!r} (Kafka error {described['error_code']})")
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


async def _bounds(consumer: AIOKafkaConsumer, topic: str,
                  partitions: Iterable[int]) -> tuple[dict[int, int], dict[int, int]]:
    tps = [TopicPartition(topic, p) for p in partitions]
    firsts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    return {tp.partition: firsts[tp] for tp in tps}, {tp.partition: ends[tp] for tp in tps}


async def log_bounds(endpoints: EngineEndpoints, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition: the first offset the topic still holds (0 unless records
    were deleted) and the offset after its last committed record."""
    async with _started(committed_consumer(endpoints)) as consumer:
        return await _bounds(consumer, topic, await partitions_of(endpoints, topic))


def _to_read(ranges: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    return {p: (start, stop) for p, (start, stop) in ranges.items() if stop > start}


async def _records_between(consumer: AIOKafkaConsumer, topic: str, ranges: dict[int, tuple[int, int]],
                           progress: Progress) -> AsyncIterator[ConsumerRecord]:
    """What committed_records yields, read by `consumer`, assigned exactly the
    partitions of `ranges` (none of them empty)."""
    stops = {TopicPartition(topic, p): stop for p, (_, stop) in ranges.items()}
    for tp in stops:
        consumer.seek(tp, ranges[tp.partition][0])
    first, total = sum(start for start, _ in ranges.values()), sum(stop - start for start, stop in ranges.values())
    while [tp for tp, stop in stops.items() if await consumer.position(tp) < stop]:
        for tp, records in (await consumer.getmany(timeout_ms=POSITION_CHECK_MS, max_records=10_000)).items():
            for record in records:
                if record.offset < stops[tp]:
                    yield record
        read = sum([min(await consumer.position(tp), stop) for tp, stop in stops.items()])
        progress(read - first, total)


async def committed_records(endpoints: EngineEndpoints, topic: str, ranges: dict[int, tuple[int, int]],
                            progress: Progress = lambda done, total: None) -> AsyncIterator[ConsumerRecord]:
    """The committed records in [start, stop) of each partition, in offset order
    per partition."""
    ranges = _to_read(ranges)
    if not ranges:
        return  # nothing to read: no consumer to start
    async with assigned_consumer(endpoints, topic, ranges, BOUNDED) as consumer:
        async for record in _records_between(consumer, topic, ranges, progress):
            yield record


async def committed_records_now(endpoints: EngineEndpoints, topic: str, partitions: Iterable[int] | None = None,
                                progress: Progress = lambda done, total: None) -> AsyncIterator[ConsumerRecord]:
    """Every record committed by now in `partitions` of the topic (all of them
    if None), in offset order per partition; one consumer reads them all."""
    partitions = await partitions_of(endpoints, topic) if partitions is None else list(partitions)
    async with _started(committed_consumer(endpoints, fetching=BOUNDED)) as consumer:
        firsts, ends = await _bounds(consumer, topic, partitions)
        ranges = _to_read({p: (firsts[p], ends[p]) for p in partitions})
        _assign(consumer, topic, ranges)
        async for record in _records_between(consumer, topic, ranges, progress):
            yield record


async def partition_runs(endpoints: EngineEndpoints, topic: str, ranges: dict[int, tuple[int, int]], size: int,
                         progress: Progress = lambda done, total: None) -> AsyncGenerator[list[ConsumerRecord], None]:
    """The committed records in [start, stop) of each partition, handed over a
    partition at a time: lists of up to `size` records of one partition, in
    offset order. A replay proves a list's events of each model as one chain
    run (decision 0013); records handed over as the fetches of all partitions
    come in, interleaved, would make those runs short. Ranges of `size`
    records or fewer in all are read at once and then handed over."""
    ranges = _to_read(ranges)
    if not ranges:
        return
    total, done = sum(stop - start for start, stop in ranges.values()), 0
    if total <= size:
        # Short ranges (a restore's tails) are read side by side and handed
        # over a partition at a time: read in turn, each partition's end,
        # often a transaction marker alone, would cost a fetch wait of its own.
        runs: dict[int, list[ConsumerRecord]] = {p: [] for p in ranges}
        consumer = committed_consumer(endpoints, fetching=BOUNDED)
        await consumer.start()
        try:
            _assign(consumer, topic, ranges)
            async for record in _records_between(consumer, topic, ranges, progress):
                runs[record.partition].append(record)
        except BaseException:
            await consumer.stop()
            raise
        stop_in_background(consumer)
        for p in sorted(runs):
            if runs[p]:
                yield runs[p]
        return
    async with _started(committed_consumer(endpoints, fetching=BOUNDED)) as consumer:
        for p, (start, stop) in sorted(ranges.items()):
            # Assigned alone: aiokafka holds back a fetch for any partition
            # while another's fetched records wait unread, which would make
            # each fetch of this one wait out its backoff.
            tp = TopicPartition(topic, p)
            consumer.assign([tp])
            consumer.seek(tp, start)
            run: list[ConsumerRecord] = []
            while await consumer.position(tp) < stop:
                for record in (await consumer.getmany(tp, timeout_ms=POSITION_CHECK_MS, max_records=size)).get(tp, []):
                    if record.offset < stop:
                        run.append(record)
                if len(run) >= size:
                    yield run[:size]
                    run = run[size:]
                progress(done + min(await consumer.position(tp), stop) - start, total)
            done += stop - start
            if run:
                yield run


async def read_committed(endpoints: EngineEndpoints, topic: str,
                         progress: Progress = lambda done, total: None) -> list[ConsumerRecord]:
    """Every committed record in the topic now."""
    return [record async for record in committed_records_now(endpoints, topic, progress=progress)]
