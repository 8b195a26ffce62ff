"""Follows `modelog.events` from its start into the sentinel's Book: every
record proven against the trusted writer keys first, as every reader of the
log does; an unproven one changes nothing and is logged.

At start the sentinel reads its book's newest snapshot (decision 0015) and
folds the log's tail after it; without a usable one it folds the whole log.
Either is read as a replay reads: a partition at a time, proven a chunk at a
time with each model's run checked by the signatures at its ends (decision
0013), since an Ed25519 check per event was half of what the fold cost. Then
it follows the log's new records, each batch proven the same way, its runs
carried on from the batches before, and writes the book again now and then.

A snapshot is checked before the sentinel goes on from it: its bytes whole
and of today's state schema, each partition's position within the log and
its last event the log's own. Then the first event of each model the tail
brings must follow the head the snapshot gives that model (seq and hash);
one that does not means the book is not the log's, and the sentinel folds
the whole log instead.
"""

import asyncio
import logging
import os
import time
from contextlib import aclosing
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from modelog_contract.domain.events import Event
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM
from modelog_contract.proven import Refused, proven_or_refused
from modelog_contract.replay_proofs import CHUNK, OpenRuns, chunk_problems
from modelog_contract.signing import TrustedKeys
from modelog_platform.adapters.log_reader import IN_BATCHES, assigned_consumer, log_bounds, partition_runs
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints
from sentinel.book import Book
from sentinel.book_snapshot import Position, SnapshotRefused, decode, lines_of, sealed

log = logging.getLogger("sentinel.follower")

YIELD_EVERY_S = 0.05  # folding between two turns of the event loop, at most: the windows' timers run on it
# A model neither changed nor asked about for this long goes to rest as its
# JSON (Book.rest): longer than a window, so a watched model stays decoded.
REST_EVERY_S = 120.0
# The book is written again at a rest once this long has passed since it was
# last written and events came in since: a restart folds at most the tail of
# that long, however long the log.
SNAPSHOT_EVERY_S = 600.0


class BookBroken(Exception):
    """An event of the log does not follow the head the book's snapshot gave its model."""


class Follower:
    def __init__(self, endpoints: EngineEndpoints, trusted: TrustedKeys, book: Book,
                 snapshot: Path | None = None, snapshot_every_s: float = SNAPSHOT_EVERY_S):
        self.endpoints, self.trusted, self.book = endpoints, trusted, book
        self.snapshot, self.snapshot_every_s = snapshot, snapshot_every_s  # None: no snapshots
        self.caught_up = asyncio.Event()  # the log as it was at start is folded
        self.refused = 0
        self.open_runs: OpenRuns = {}  # each model's proven run, carried from chunk to chunk in log order
        self.folding = ""  # how far the fold of the log at start has read, while it runs
        self.next_offsets: dict[int, int] = {}  # per partition, the next offset to fold
        self.last_events: dict[int, tuple[int, str]] = {}  # per partition, (offset, hash) of the last event folded
        # Set while the book holds states a snapshot gave: the models whose
        # first event since is still to be checked against them.
        self.unchecked: set[str] | None = None
        self.started_from = "the whole log"
        self.restored_events = 0  # the events of the book the start went on from
        self.folded_at_start = 0  # events the start folded: the whole log's, or the tail's after the book
        self.written_at = time.monotonic()
        self.written_events: int | None = None  # the events of the book on disk; None: no book this start can use

    async def run(self) -> None:
        firsts, ends = await log_bounds(self.endpoints, EVENTS_TOPIC)
        started = time.monotonic()
        starts = await self._restore(firsts, ends)
        while True:
            try:
                await self._follow(starts, ends, started)
            except BookBroken as broken:
                log.error("the book's snapshot is not the log's (%s): folding the whole log", broken)
                self._forget()
                firsts, ends = await log_bounds(self.endpoints, EVENTS_TOPIC)
                starts, started = firsts, time.monotonic()

    async def _follow(self, starts: dict[int, int], ends: dict[int, int], started: float) -> None:
        async with aclosing(partition_runs(self.endpoints, EVENTS_TOPIC, {p: (starts[p], ends[p]) for p in ends},
                                           CHUNK, self._read)) as chunks:
            async for chunk in chunks:
                await self._apply(chunk)
                if time.monotonic() - self.written_at >= self.snapshot_every_s:
                    await self._write()  # a long fold cut short goes on from here next time; rests the book
                else:
                    self.book.rest()  # the models of the partitions folded before: at rest until asked for
        log.info("the log is folded from %s: %d events, %d models, in %.1fs", self.started_from, self.book.events,
                 self.book.models(), time.monotonic() - started)
        self.next_offsets.update({p: max(end, self.next_offsets.get(p, 0)) for p, end in ends.items()})
        self.folded_at_start = self.book.events - self.restored_events
        self.caught_up.set()
        if self.book.events != self.written_events:
            await self._write()
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
                    if (time.monotonic() - self.written_at >= self.snapshot_every_s
                            and self.book.events != self.written_events):
                        await self._write()  # rests the book too
                    else:
                        self.book.rest()
                    rested = time.monotonic()

    async def _restore(self, firsts: dict[int, int], ends: dict[int, int]) -> dict[int, int]:
        """The book as the snapshot holds it, checked against the log's ends and
        last events; returns where to fold on from (the log's start without one)."""
        if self.snapshot is None or not self.snapshot.exists():
            return firsts
        try:
            book, position = decode(await asyncio.to_thread(self.snapshot.read_bytes))
            await self._check_position(position, ends)
        except (SnapshotRefused, OSError) as refused:
            log.warning("the book's snapshot %s is not used (%s): folding the whole log", self.snapshot, refused)
            return firsts
        self.go_on_from(book, position)
        return {p: max(firsts[p], position.next_offsets.get(p, firsts[p])) for p in ends}

    def go_on_from(self, book: Book, position: Position) -> None:
        """Hold `book`, folded up to `position`; the first event since of each
        model is checked against the head the book gives it."""
        self.book.take(book)
        self.next_offsets, self.last_events = dict(position.next_offsets), dict(position.last_events)
        self.unchecked = {*book.resting, *book.states, DEFAULT_POLICY_STREAM}
        self.started_from = f"its book ({book.events:,} events, {book.models():,} models)"
        self.restored_events = book.events
        self.written_at, self.written_events = time.monotonic(), book.events

    async def _check_position(self, position: Position, ends: dict[int, int]) -> None:
        for p, offset in position.next_offsets.items():
            if p not in ends:
                raise SnapshotRefused(f"it covers partition {p}, which the log does not have")
            if offset > ends[p]:
                raise SnapshotRefused(f"it covers partition {p} up to offset {offset}, the log ends at {ends[p]}")
        wanted = {p: (offset, offset + 1) for p, (offset, _) in position.last_events.items()}
        found = {(r.partition, r.offset): r.value or b""
                 async for chunk in partition_runs(self.endpoints, EVENTS_TOPIC, wanted, CHUNK) for r in chunk}
        for p, (offset, hash_) in position.last_events.items():
            try:
                held = orjson.loads(found.get((p, offset), b"null")) or {}
            except orjson.JSONDecodeError:
                held = {}
            if held.get("hash") != hash_:
                raise SnapshotRefused(f"the log's event at {EVENTS_TOPIC}/{p}/{offset} is not the last event "
                                      "it folded")

    def _forget(self) -> None:
        self.book.take(Book())
        self.open_runs, self.refused, self.unchecked, self.restored_events = {}, 0, None, 0
        self.written_events = None  # the book on disk is not the log's: write the whole fold's
        self.next_offsets, self.last_events = {}, {}
        self.started_from = "the whole log"
        self.caught_up.clear()

    async def _write(self) -> None:
        """The book and its position, written whole or not at all."""
        if self.snapshot is None:
            return
        lines = lines_of(self.book, Position(dict(self.next_offsets), dict(self.last_events)),
                         datetime.now(timezone.utc))
        try:
            await asyncio.to_thread(write_whole, self.snapshot, lines)
        except OSError as error:  # a full disk: the sentinel goes on, a restart folds more
            log.error("the book's snapshot could not be written to %s: %s", self.snapshot, error)
            return
        self.written_at, self.written_events = time.monotonic(), self.book.events
        log.info("the book is written to %s: %d events, %d models", self.snapshot, self.book.events,
                 self.book.models())

    def _check(self, event: Event) -> None:
        """While the book holds states a snapshot gave: a model's first event
        since must follow the head the book has for it."""
        assert self.unchecked is not None
        if event.model in self.unchecked or not self.book.has(event.model):
            self.unchecked.discard(event.model)
            try:
                seq, head = self.book.head(event.model)
            except ValidationError as error:
                raise BookBroken(f"{event.model!r}: its state in the book does not decode ({error})") from None
            if event.seq != seq + 1 or event.prev_hash != head:
                raise BookBroken(f"{event.model!r} seq {event.seq} does not follow the book's head at seq {seq}")

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
            self.next_offsets[record.partition] = record.offset + 1
            event = proven_or_refused(record.value or b"", problem)
            if isinstance(event, Refused):
                self.refused += 1
                log.warning("an unproven record at %s/%d/%d changes nothing: %s", EVENTS_TOPIC, record.partition,
                            record.offset, event.problem)
                continue
            if self.unchecked is not None:
                self._check(event)
            self.book.apply(event)
            self.last_events[record.partition] = (record.offset, event.hash)


def write_whole(path: Path, lines: list[bytes]) -> None:
    """`lines` sealed into `path`: a crash mid-write leaves the previous file, never half of this one."""
    data = sealed(lines)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)
