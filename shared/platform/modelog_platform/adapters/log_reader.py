"""Reading a topic between offsets, as a read_committed consumer sees it: for
verification, audits, replays and tests."""

from collections.abc import AsyncIterator, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Progress = Callable[[int, int], None]  # (offsets read, offsets to read)


async def partitions_of(endpoints, topic: str) -> list[int]:
    """The topic's partitions as the broker has them (a copy of a log may differ)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        if described["error_code"]:
            raise LookupError(f"no topic {topic!r} (Kafka error {described['error_code']})")
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


def committed_consumer(endpoints) -> AIOKafkaConsumer:
    # Positions are always sought; were one ever reset, it goes to the start, never the end.
    return AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap, isolation_level="read_committed",
                            enable_auto_commit=False, auto_offset_reset="earliest")


async def log_bounds(endpoints, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition: the first offset the topic still holds (0 unless records
    were deleted) and the offset after its last committed record."""
    consumer = committed_consumer(endpoints)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(endpoints, topic)]
        firsts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        return {tp.partition: firsts[tp] for tp in tps}, {tp.partition: ends[tp] for tp in tps}
    finally:
        await consumer.stop()


async def committed_records(endpoints, topic: str, ranges: dict[int, tuple[int, int]],
                            progress: Progress = lambda done, total: None) -> AsyncIterator[ConsumerRecord]:
    """The committed records in [start, stop) of each partition, in offset order
    per partition (offsets have gaps where transaction markers sit)."""
    ranges = {p: (start, stop) for p, (start, stop) in ranges.items() if stop > start}
    if not ranges:
        return
    consumer = committed_consumer(endpoints)
    await consumer.start()
    try:
        stops = {TopicPartition(topic, p): stop for p, (_, stop) in ranges.items()}
        consumer.assign(list(stops))
        for tp in stops:
            consumer.seek(tp, ranges[tp.partition][0])
        total = sum(stop - start for start, stop in ranges.values())
        while [tp for tp, stop in stops.items() if await consumer.position(tp) < stop]:
            for tp, records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).items():
                for record in records:
                    if record.offset < stops[tp]:
                        yield record
            read = sum([min(await consumer.position(tp), stop) for tp, stop in stops.items()])
            progress(read - sum(start for start, _ in ranges.values()), total)
    finally:
        await consumer.stop()


async def read_committed(endpoints, topic: str, progress: Progress = lambda done, total: None) -> list:
    """Every committed record in the topic now."""
    firsts, ends = await log_bounds(endpoints, topic)
    return [record async for record in committed_records(
        endpoints, topic, {p: (firsts[p], ends[p]) for p in ends}, progress)]
