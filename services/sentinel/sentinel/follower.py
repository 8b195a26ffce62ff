"""Follows `modelog.events` from its start into the sentinel's Book: every
record proven against the trusted writer keys first, as every reader of the
log does; an unproven one changes nothing and is logged."""

import asyncio
import logging

from aiokafka import TopicPartition

from modelog_contract.proven import Refused, proven_event
from modelog_contract.signing import TrustedKeys
from modelog_platform.adapters.log_reader import IN_BATCHES, assigned_consumer, log_bounds, partitions_of
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints
from sentinel.book import Book

log = logging.getLogger("sentinel.follower")


class Follower:
    def __init__(self, endpoints: EngineEndpoints, trusted: TrustedKeys, book: Book):
        self.endpoints, self.trusted, self.book = endpoints, trusted, book
        self.caught_up = asyncio.Event()  # the log as it was at start is folded
        self.refused = 0

    async def run(self) -> None:
        partitions = await partitions_of(self.endpoints, EVENTS_TOPIC)
        _, ends = await log_bounds(self.endpoints, EVENTS_TOPIC)
        behind = {p: end for p, end in ends.items() if end > 0}
        # Nobody waits on the book for an answer, and a stage change reaches it
        # long before a window that could judge the new version closes.
        async with assigned_consumer(self.endpoints, EVENTS_TOPIC, partitions, fetching=IN_BATCHES) as consumer:
            await consumer.seek_to_beginning(*[TopicPartition(EVENTS_TOPIC, p) for p in partitions])
            if not behind:
                self.caught_up.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batches.items():
                    for record in records:
                        self._apply(record.value, tp.partition, record.offset)
                    if records and records[-1].offset + 1 >= behind.get(tp.partition, 0):
                        behind.pop(tp.partition, None)
                if not self.caught_up.is_set():
                    # A partition whose last records are transaction markers has no record to reach its end with.
                    for p in list(behind):
                        if await consumer.position(TopicPartition(EVENTS_TOPIC, p)) >= behind[p]:
                            behind.pop(p)
                    if not behind:
                        log.info("the log is folded: %d events, %d models", self.book.events,
                                 len(self.book.states))
                        self.caught_up.set()

    def _apply(self, raw: bytes | None, partition: int, offset: int) -> None:
        event = proven_event(raw or b"", self.trusted)
        if isinstance(event, Refused):
            self.refused += 1
            log.warning("an unproven record at %s/%d/%d changes nothing: %s", EVENTS_TOPIC, partition, offset,
                        event.problem)
            return
        self.book.apply(event)
