"""A topic read whole, as a read_committed consumer sees it: for verification,
audits and tests."""

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


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


async def read_committed(endpoints, topic: str,
                         progress: Callable[[int, int], None] = lambda done, total: None) -> list:
    """Every committed record in the topic now, partition by partition
    (offsets have gaps where transaction markers sit)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap,
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(endpoints, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records, total = [], sum(ends.values())
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                records += batch
            progress(sum([await consumer.position(tp) for tp in partitions]), total)
        return records
    finally:
        await consumer.stop()
