"""A fresh topic filled with a benchmark's records, for the scripts that read
a log from Kafka (rebuild_speed.py, verify_log.py)."""

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.settings import EngineEndpoints


async def publish_to_new_topic(endpoints: EngineEndpoints, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Create `topic` and append the (key, value) records to it, in order per key."""
    admin = AIOKafkaAdminClient(**kafka_connection(endpoints))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, endpoints.topic_partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**kafka_connection(endpoints), enable_idempotence=True,
                                acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        sent = [await producer.send(topic, key=key, value=value) for key, value in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
