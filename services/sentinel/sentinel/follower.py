"""Follows `modelog.events` from its start into the sentinel's Book: every
record proven against the trusted writer keys first, as every reader of the
log does; an unproven one changes nothing and is logged.

At start the sentinel folds the whole log, as a replay does: a partition at a
time, proven a chunk at a time with each model's run checked by the
signatures at its ends (decision 0013), since an Ed25519 check per event was
half of what the fold cost. Then it follows the log's new records, each
batch proven the same way, its runs carried on from the batches before."""

import asyncio
import logging
import time

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from modelog_contract.proven import Refused, proven_or_refused
from modelog_contract.replay_proofs import CHUNK, OpenRuns, chunk_problems
from modelog_contract.signing import TrustedKeys
from modelog_platform.adapters.log_reader import IN_BATCHES, assigned_consumer, log_bounds, partition_runs
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints
from sentinel.book import Book

log = logging.getLogger("sentinel.follower")

YIELD_EVERY_S = 0.05  # folding between two turns of the event loop, at most: the windows' timers run on it
# A model neither changed nor asked about for this long goes to rest as its
# JSON (Book.rest): longer than a window, so a watched model stays decoded.
REST_EVERY_S = 120.0


class Follower:
    def __init__(self, endpoints: EngineEndpoints, trusted: TrustedKeys, book: Book):
        self.endpoints, self.trusted, self.book = endpoints, trusted, book
        self.caught_up = asyncio.Event()  # the log as it was at start is folded
        self.refused = 0
        self.open_runs: OpenRuns = {}  # each model's proven run, carried from chunk to chunk in log order
        self.folding = ""  # how far the fold of the log at start has read, while it runs

    async def run(self) -> None:
        firsts, ends = await log_bounds(self.endpoints, EVENTS_TOPIC)
        started = time.monotonic()
        async for chunk in partition_runs(self.endpoints, EVENTS_TOPIC,
                                          {p: (firsts[p], ends[p]) for p in ends}, CHUNK, self._read):
            await self._apply(chunk)
            self.book.rest()  # the models of the partitions folded before: at rest until asked for
        log.info("the log is folded: %d events, %d models, in %.1fs", self.book.events, self.book.models(),
                 time.monotonic() - started)
        self.caught_up.set()
        # Nobody waits on the book for an answer, and a stage change reaches it
        # long before a window that could judge the new version closes.
        async with assigned_consumer(self.endpoints, EVENTS_TOPIC, ends, fetching=IN_BATCHES) as consumer:
            for p, end in ends.items():
                consumer.seek(TopicPartition(EVENTS_TOPIC, p), end)
            rested = time.monotonic()
            while True:
                for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    await self._apply(records)
                if time.monotonic() - rested >= REST_EVERY_S:
                    self.book.rest()
                    rested = time.monotonic()

    def _read(self, done: int, total: int) -> None:
        self.folding = f"{done:,} of {total:,} log offsets read"

    async def _apply(self, records: list[ConsumerRecord]) -> None:
        """Prove one partition's records, in offset order, and fold them."""
        problems = await asyncio.to_thread(chunk_problems, [r.value or b"" for r in records], self.trusted,
                                           self.open_runs)
        turn = time.monotonic()
        for record, problem in zip(records, problems, strict=True):
            if time.monotonic() - turn > YIELD_EVERY_S:
                await asyncio.sleep(0)
                turn = time.monotonic()
            event = proven_or_refused(record.value or b"", problem)
            if isinstance(event, Refused):
                self.refused += 1
                log.warning("an unproven record at %s/%d/%d changes nothing: %s", EVENTS_TOPIC, record.partition,
                            record.offset, event.problem)
                continue
            self.book.apply(event)
