"""A replay of a log whose first events were deleted (retention, records
deleted by hand) is not the registry's history: the rebuild refuses it rather
than give, or switch to, read models without them."""

import re
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from modelog_platform.adapters.kafka_connection import kafka_connection
from projector.rebuild import IncompleteLog, rebuild
from tests.e2e.helpers import new_topic

pytestmark = pytest.mark.engines


async def test_a_log_missing_its_first_events_is_refused(engines):
    topic = await new_topic(engines, "cut-log")
    producer = AIOKafkaProducer(**kafka_connection(engines))
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, f"event {n}".encode(), key=b"fraud")
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(**kafka_connection(engines))
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(before_offset=2)})
    finally:
        await admin.close()

    with pytest.raises(IncompleteLog, match=re.escape("first offset left {0: 2}")):
        await rebuild(engines, f"rebuild_{uuid4().hex[:8]}", topic=topic)
