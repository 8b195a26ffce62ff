"""Reads the records of modelog.events at given offsets: how a snapshot's
claims (its last event, each model's head) are checked against the log.

Offsets are read in order; one fetch returns the records after a sought
offset too, so heads that sit close together cost one round trip, and
checking every head of a partition costs at most one pass over it.
"""

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from modelog_platform.adapters.log_reader import SEEKING, committed_consumer
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints

FETCH_TIMEOUT_S = 30.0


class LogHeads:
    def __init__(self, endpoints: EngineEndpoints):
        self.consumer: AIOKafkaConsumer = committed_consumer(endpoints, fetching=SEEKING)
        # Partitions once read stay assigned, paused while not read: assigning
        # anew restarts the consumer's fetching, which costs a fetch wait.
        self.assigned: set[TopicPartition] = set()

    async def stop(self) -> None:
        # Started on first use, and then assigned at once: aiokafka's consumer
        # can hang in stop() when it was started and never assigned a partition.
        if self.assigned:
            await self.consumer.stop()

    async def _reading(self, tps: set[TopicPartition]) -> None:
        if not self.assigned:
            await self.consumer.start()
        if not tps <= self.assigned:
            self.assigned |= tps
            self.consumer.assign(list(self.assigned))
        self.consumer.pause(*(self.assigned - tps))
        self.consumer.resume(*tps)

    async def bounds(self, partitions: list[int]) -> tuple[dict[int, int], dict[int, int]]:
        """Per partition: its first offset, and the offset after its last committed record."""
        tps = [TopicPartition(EVENTS_TOPIC, p) for p in partitions]
        await self._reading(set(tps[:1]))
        self.consumer.pause(*tps[:1])  # sought by no one yet: nothing to fetch
        firsts, ends = await self.consumer.beginning_offsets(tps), await self.consumer.end_offsets(tps)
        return {tp.partition: firsts[tp] for tp in tps}, {tp.partition: ends[tp] for tp in tps}

    async def fields_at(self, wanted: Mapping[int, Iterable[int]], ends: Mapping[int, int] | None = None
                        ) -> dict[tuple[int, int], dict[str, Any] | None]:
        """Each (partition, offset)'s record as JSON fields; None where the log
        holds no committed record at that offset (an aborted one, a marker, a
        gap, or at or past the partition's committed end, taken from `ends`
        when the caller knows it). Partitions are read side by side."""
        todo = {p: sorted(set(offsets)) for p, offsets in wanted.items()}
        todo = {p: offsets for p, offsets in todo.items() if offsets}
        found: dict[tuple[int, int], dict[str, Any] | None] = {(p, o): None for p, os in todo.items() for o in os}
        if not todo:
            return found
        tps = {p: TopicPartition(EVENTS_TOPIC, p) for p in todo}
        await self._reading(set(tps.values()))
        if ends is None:
            end_offsets = await self.consumer.end_offsets(list(tps.values()))
            ends = {tp.partition: end_offsets[tp] for tp in tps.values()}
        index = dict.fromkeys(todo, 0)
        active = {p for p in todo if todo[p][0] < ends[p]}
        for p in todo:
            if p in active:
                self.consumer.seek(tps[p], todo[p][0])
            else:
                self._done(tps[p])  # nothing committed there to read: not fetched at all
        deadline = time.monotonic() + FETCH_TIMEOUT_S
        while active:
            batches = await self.consumer.getmany(*(tps[p] for p in active), timeout_ms=500)
            for tp, records in batches.items():
                p = tp.partition
                if p not in active or not records:
                    continue
                deadline = time.monotonic() + FETCH_TIMEOUT_S
                by_offset = {r.offset: r for r in records}
                last, offsets = records[-1].offset, todo[p]
                while index[p] < len(offsets) and offsets[index[p]] <= last:
                    record = by_offset.get(offsets[index[p]])
                    if record is not None:
                        found[(p, offsets[index[p]])] = _fields(record.value)
                    index[p] += 1
                if index[p] == len(offsets) or offsets[index[p]] >= ends[p]:
                    self._done(tp)
                    active.discard(p)
                elif offsets[index[p]] > last + 1:
                    self.consumer.seek(tp, offsets[index[p]])  # skip what lies between
            for p in list(active):
                if await self.consumer.position(tps[p]) >= ends[p]:
                    self._done(tps[p])
                    active.discard(p)  # nothing committed at or after what is still wanted
            if active and time.monotonic() > deadline:
                raise TimeoutError(f"no record of {EVENTS_TOPIC} partitions {sorted(active)} "
                                   f"in {FETCH_TIMEOUT_S:.0f}s")
        return found

    def _done(self, tp: TopicPartition) -> None:
        """Stop reading `tp` and let go of what was fetched of it beyond what
        was wanted: the consumer sends no fetch to a broker while a partition's
        fetched records wait unread, for up to 100 ms each time (aiokafka's
        prefetch backoff), so the other partitions would wait on them."""
        self.consumer.pause(tp)
        self.consumer.seek(tp, 0)  # a seek drops the fetched records; the next read seeks again


def _fields(raw: bytes | None) -> dict[str, Any] | None:
    try:
        fields = json.loads(raw or b"")
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None
