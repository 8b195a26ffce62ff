"""Rebuild one partition's decider state from modelog.events, the promoter's own output.

The log is the only truth: state is a fold of the committed events (read with
read_committed up to the last stable offset), and the command position to
resume from is the last one those events record.
"""

from aiokafka import AIOKafkaConsumer, TopicPartition

from modelog.codec import decode_event
from modelog.domain import ModelState, evolve
from modelog.settings import EVENTS_TOPIC, EngineEndpoints


async def restore_partition(endpoints: EngineEndpoints, partition: int) -> tuple[dict[str, ModelState], int]:
    """(model states, next command offset) for one co-partitioned pair."""
    tp = TopicPartition(EVENTS_TOPIC, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap,
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]  # the last stable offset
        states: dict[str, ModelState] = {}
        next_command = 0
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=500, max_records=5000)).get(tp, []):
                event = decode_event(record.value)
                states[event.model] = evolve(states.get(event.model) or ModelState(name=event.model), event)
                if event.command_position and event.command_position.partition == partition:
                    next_command = max(next_command, event.command_position.offset + 1)
        return states, next_command
    finally:
        await consumer.stop()
