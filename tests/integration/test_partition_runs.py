"""A replay's reader hands the log over a partition at a time, in offset
order, in lists of bounded size: every record of its ranges once, and a
caller reading beside it may stop early."""

import asyncio
import threading

from aiokafka import AIOKafkaProducer

from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import log_bounds, partition_runs
from modelog_platform.adapters.read_aside import partition_runs_read_aside
from tests.e2e.helpers import new_topic

PARTITIONS, PER_PARTITION = 3, 25


async def a_log_of_three_partitions(engines) -> str:
    """Records b"p<partition>-<n>", sent to the partitions in turn, so the
    broker holds them interleaved in time."""
    topic = await new_topic(engines, "partition-runs", partitions=PARTITIONS)
    producer = AIOKafkaProducer(**kafka_connection(engines))
    await producer.start()
    try:
        for n in range(PER_PARTITION):
            for p in range(PARTITIONS):
                await producer.send_and_wait(topic, f"p{p}-{n}".encode(), partition=p)
    finally:
        await producer.stop()
    return topic


async def whole_log(engines, topic: str) -> dict[int, tuple[int, int]]:
    firsts, ends = await log_bounds(engines, topic)
    return {p: (firsts[p], ends[p]) for p in ends}


async def test_each_list_holds_one_partitions_records_in_offset_order(engines):
    topic = await a_log_of_three_partitions(engines)
    runs = [run async for run in partition_runs(engines, topic, await whole_log(engines, topic), size=10)]
    assert all(0 < len(run) <= 10 and len({r.partition for r in run}) == 1 for run in runs)
    handed = [r for run in runs for r in run]
    # A partition's lists come one after another: a partition at a time.
    assert [r.partition for r in handed] == sorted(r.partition for r in handed)
    assert [r.value for r in handed] == [f"p{p}-{n}".encode() for p in range(PARTITIONS) for n in range(PER_PARTITION)]


async def test_a_range_reads_only_its_offsets(engines):
    topic = await a_log_of_three_partitions(engines)
    runs = [run async for run in partition_runs(engines, topic, {0: (5, 8), 1: (3, 3), 2: (24, 25)}, size=10)]
    assert [[r.value for r in run] for run in runs] == [[b"p0-5", b"p0-6", b"p0-7"], [b"p2-24"]]


async def test_read_aside_hands_over_the_same_lists_and_stops_when_its_caller_does(engines):
    topic = await a_log_of_three_partitions(engines)
    ranges = await whole_log(engines, topic)
    expected = [[r.value for r in run] async for run in partition_runs(engines, topic, ranges, size=4)]

    def read_aside(stop_after: int | None) -> list[list[bytes]]:
        read = []
        for run in partition_runs_read_aside(engines, topic, ranges, 4):
            read.append([r.value for r in run])
            if len(read) == stop_after:
                break
        return read

    assert await asyncio.to_thread(read_aside, None) == expected
    assert await asyncio.to_thread(read_aside, 1) == expected[:1]
    assert not [t for t in threading.enumerate() if t.name == f"reading {topic}"]
