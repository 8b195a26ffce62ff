"""A consumer positioned at the current end of a topic, for benchmarks that
watch what the stack appends next (decisions, a write's stages)."""

from aiokafka import AIOKafkaConsumer, TopicPartition

from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints


async def consumer_at_end(endpoints: EngineEndpoints, topic: str = EVENTS_TOPIC,
                          isolation_level: str = "read_committed", fetch_max_wait_ms: int = 10) -> AIOKafkaConsumer:
    """Started, every partition assigned and its position resolved now, before
    anything is published: only what is appended after this call is read."""
    consumer = AIOKafkaConsumer(**kafka_connection(endpoints), fetch_max_wait_ms=fetch_max_wait_ms,
                                isolation_level=isolation_level, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(endpoints.topic_partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    return consumer
