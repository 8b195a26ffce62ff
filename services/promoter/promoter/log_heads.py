"""Reads the records of modelog.events at given offsets: how a snapshot's
claims (its last event, each model's head) are checked against the log.

Offsets are read in order; one fetch returns the records after a sought
offset too, so heads that sit close together cost one round trip, and
checking every head of a partition costs at most one pass over it.
"""

import json
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from modelog_platform.adapters.log_reader import committed_consumer
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints

FETCH_TIMEOUT_S = 30.0


class LogHeads:
    def __init__(self, endpoints: EngineEndpoints):
        self.consumer: AIOKafkaConsumer = committed_consumer(endpoints)
        self.assigned: TopicPartition | None = None

    async def stop(self) -> None:
        # Started on first use, and then assigned at once: aiokafka's consumer
        # can hang in stop() when it was started and never assigned a partition.
        if self.assigned is not None:
            await self.consumer.stop()

    async def fields_at(self, partition: int, offsets: Iterable[int], end: int | None = None
                        ) -> dict[int, dict[str, Any] | None]:
        """Each offset's record as JSON fields; None where the log holds no
        committed record at that offset (an aborted one, a marker, a gap, or
        past `end`, the partition's committed end when the caller knows it)."""
        tp = TopicPartition(EVENTS_TOPIC, partition)
        if self.assigned is None:
            await self.consumer.start()
        if self.assigned != tp:
            self.consumer.assign([tp])
            self.assigned = tp
        if end is None:
            end = (await self.consumer.end_offsets([tp]))[tp]
        wanted = sorted(set(offsets))
        found: dict[int, dict[str, Any] | None] = {o: None for o in wanted}
        index = 0
        while index < len(wanted):
            if wanted[index] >= end:
                break
            self.consumer.seek(tp, wanted[index])
            deadline = time.monotonic() + FETCH_TIMEOUT_S
            records: list[ConsumerRecord] = []
            while not records:
                records = (await self.consumer.getmany(tp, timeout_ms=500)).get(tp, [])
                if not records and await self.consumer.position(tp) >= end:
                    break  # nothing committed at or after the offset
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no record of {EVENTS_TOPIC}/{partition} from offset {wanted[index]} "
                                       f"in {FETCH_TIMEOUT_S:.0f}s")
            if not records:
                break
            by_offset = {r.offset: r for r in records}
            last = records[-1].offset
            while index < len(wanted) and wanted[index] <= last:
                record = by_offset.get(wanted[index])
                if record is not None:
                    found[wanted[index]] = _fields(record.value)
                index += 1
        return found


def _fields(raw: bytes | None) -> dict[str, Any] | None:
    try:
        fields = json.loads(raw or b"")
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None
