"""modelog's one way to read Kafka (adapters/log_reader), against the real
broker: reads between offsets, only committed records, and the partition a
model lives in is the one producers really write it to."""

import asyncio
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer

from modelog_platform.adapters.commands import CommandPublisher
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import (
    committed_records,
    committed_records_now,
    log_bounds,
    model_partition,
    read_committed,
)
from tests.e2e.helpers import new_topic

pytestmark = pytest.mark.engines


async def write(engines, topic: str, partition: int, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(**kafka_connection(engines), acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()


async def test_reads_each_partition_between_its_offsets(engines):
    topic = await new_topic(engines, "between", partitions=3)
    await write(engines, topic, 0, [f"p0-{n}".encode() for n in range(10)])
    await write(engines, topic, 1, [f"p1-{n}".encode() for n in range(4)])
    reports = []

    records = [r async for r in committed_records(engines, topic, {0: (3, 7), 1: (0, 2), 2: (0, 0)},
                                                  lambda done, total: reports.append((done, total)))]

    assert [(r.partition, r.offset, r.value) for r in records if r.partition == 0] == [
        (0, n, f"p0-{n}".encode()) for n in range(3, 7)]
    assert [(r.partition, r.offset, r.value) for r in records if r.partition == 1] == [
        (1, 0, b"p1-0"), (1, 1, b"p1-1")]
    assert reports[-1] == (6, 6)
    assert [r async for r in committed_records(engines, topic, {0: (5, 5)})] == []


async def test_only_committed_records_are_read(engines):
    topic = await new_topic(engines, "committed", partitions=2)
    producer = AIOKafkaProducer(**kafka_connection(engines), transactional_id=f"test-{topic}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"first", partition=1)
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted", partition=1)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"last", partition=1)
    finally:
        await producer.stop()

    assert [r.value for r in await read_committed(engines, topic)] == [b"first", b"last"]
    firsts, ends = await log_bounds(engines, topic)
    # Each transaction's marker takes an offset too: 3 records, 3 markers.
    assert firsts == {0: 0, 1: 0} and ends == {0: 0, 1: 6}
    between = [r async for r in committed_records(engines, topic, {1: (1, 6)})]
    assert [r.value for r in between] == [b"last"]
    assert [r.value async for r in committed_records_now(engines, topic, [0])] == []


async def test_a_model_lives_where_the_producers_put_it(engines):
    partitions = 12
    topic = await new_topic(engines, "partitioning", partitions=partitions)
    models = [f"model-{n}-{uuid4().hex[:6]}" for n in range(300)] + ["fraud", "churn", "a", "ü-model"]
    publisher = CommandPublisher(engines)  # its producer is the one that writes commands
    plain = AIOKafkaProducer(**kafka_connection(engines))  # Kafka's default, as other clients
    await publisher.start()
    await plain.start()
    try:
        for producer in (publisher.producer, plain):
            sent = [await producer.send(topic, b"", key=model.encode()) for model in models]
            chosen = [metadata.partition for metadata in await asyncio.gather(*sent)]
            assert chosen == [model_partition(model, partitions) for model in models]
    finally:
        await publisher.stop()
        await plain.stop()
    assert len(set(chosen)) == partitions  # the keys spread over every partition
