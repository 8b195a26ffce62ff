"""Rebuild the decider state of command partitions from modelog.events, the
promoter's own output: from the newest trustworthy snapshot plus the log's
tail after it, else from the whole log.

The log is the only truth: state is a fold of the committed events (read with
read_committed up to the last stable offset), and the command position to
resume from is the last one those events record. Only events the promoter
signed (a key its trusted bundle holds) are folded: anything else in the log
was not decided here, and is skipped with an error. They are proven as a
replay proves them (decision 0013): a partition's records read a chunk at a
time, each model's run of linked events in it by the signatures at its ends,
which takes a quarter of the CPU of checking every event's signature.

A snapshot only saves reading the log's beginning, and is never trusted
blindly. It is refused, and the next older one tried, then the whole log, when
its bytes are not the promoter's (signature, sha256, gzip, JSON), it was
folded under another state schema or idempotency window, it covers more of
the log than the log holds or the log's event at its last position is not
the one it names, or an event of the tail does not chain from the head it
gives a model. Models the tail does not touch keep the snapshot's head
unchecked here: the loop checks each against the log before that model's
first decision (`Restored.unverified`). The snapshot's states stay as its
JSON until the tail or a decision first needs a model (promoter.model_states):
a restart does not decode every model the partition ever saw.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any
from uuid import UUID

from aiokafka.structs import ConsumerRecord
from minio.error import S3Error

from modelog_contract.domain import ModelState, evolve
from modelog_contract.domain.events import Event
from modelog_contract.domain.idempotency import DEFAULT_WINDOW, IdempotencyWindow
from modelog_contract.proven import Refused, proven_or_refused
from modelog_contract.replay_proofs import OpenRuns, chunk_problems
from modelog_contract.signing import TrustedKeys
from modelog_platform.adapters.log_reader import Progress, partition_runs
from modelog_platform.log_signing import trusted_keys
from modelog_platform.settings import EVENTS_TOPIC
from promoter.log_heads import LogHeads
from promoter.model_states import ModelStates, StoredStateUnreadable
from promoter.settings import PromoterSettings
from promoter.snapshot_store import SnapshotStore, covered_offset
from promoter.snapshots import Cut, SnapshotRefused, chain_problem, decode

log = logging.getLogger("modelog.promoter")

YIELD_EVERY_S = 0.05  # folding between two turns of the event loop, at most
# Records of a partition proven at once: each model's run in a chunk costs
# two signature checks, and a chunk is proven before any of it is folded.
PROVED_TOGETHER = 5_000


@dataclass
class Restored:
    partition: int
    states: ModelStates = field(default_factory=ModelStates)
    next_command: int = 0  # the first command offset no event records
    # (token id, command id, when decided) of every event of the tail whose actor a token proved.
    spent_tokens: list[tuple[str, UUID, datetime]] = field(default_factory=list)
    # (token id, command id, forget after) as the snapshot kept them.
    spent_until: list[tuple[str, UUID, datetime]] = field(default_factory=list)
    head_offsets: dict[str, int] = field(default_factory=dict)
    last_event: tuple[int, str] | None = None  # (offset, hash) of the last event folded
    snapshot: str | None = None  # the snapshot restored from; None: the whole log
    refused: list[tuple[str, str]] = field(default_factory=list)  # (snapshot, why) of those passed over
    # model -> its head's offset: restored from the snapshot and not seen in the
    # tail, so its head is still to be checked against the log.
    unverified: dict[str, int] = field(default_factory=dict)
    from_snapshot: bool = False
    window: IdempotencyWindow = DEFAULT_WINDOW  # the command ids each model remembers

    def fold(self, event: Event, offset: int, appended_at: datetime) -> str | None:
        """Fold the event found at `offset`; returns why a snapshot's tail does
        not continue it (the event is then not folded), else None."""
        try:
            state = self.states.get(event.model) or ModelState(name=event.model)
        except StoredStateUnreadable as error:
            return str(error)
        if self.from_snapshot and (problem := chain_problem(state, event.seq, event.prev_hash)):
            return (f"model {event.model!r}'s event at offset {offset} does not chain from its head "
                    f"in the snapshot: {problem}")
        self.states[event.model] = evolve(state, event, self.window)
        self.head_offsets[event.model] = offset
        self.last_event = (offset, event.hash)
        self.unverified.pop(event.model, None)  # its tail chains from the head: the head is the log's
        if event.command_position and event.command_position.partition == self.partition:
            self.next_command = max(self.next_command, event.command_position.offset + 1)
        if event.actor.token_id is not None:
            self.spent_tokens.append((event.actor.token_id, event.command_id, appended_at))
        return None

    @classmethod
    def of(cls, key: str, cut: Cut, refused: list[tuple[str, str]]) -> "Restored":
        return cls(partition=cut.partition, states=cut.states.copy(), next_command=cut.command_offset,
                   spent_until=list(cut.spent_tokens),
                   head_offsets=dict(cut.head_offsets), last_event=cut.last_event, snapshot=key,
                   refused=refused, unverified=dict(cut.head_offsets), from_snapshot=True, window=cut.window)


async def restore_partitions(settings: PromoterSettings, partitions: list[int],
                             progress: Progress = lambda done, total: None,
                             snapshots: SnapshotStore | None = None,
                             passed_over: Mapping[str, str] = MappingProxyType({})) -> dict[int, Restored]:
    """Restore each co-partitioned events partition; one consumer reads every
    tail. `progress(read, total)` follows the offsets read, for long restores.
    Without `snapshots`, or with none usable, each partition is the fold of its
    whole log; snapshots in `passed_over` (snapshot -> why) are not tried."""
    trusted = trusted_keys(settings)  # read at each restore: a rotated bundle counts from the next one
    if not partitions:
        return {}
    heads = LogHeads(settings)  # also reads the partitions' bounds: one consumer fewer to start
    try:
        firsts, ends = await heads.bounds(partitions)
        candidates = {p: await _candidates(snapshots, p) for p in partitions}
        refused = {p: [(key, why) for key, why in passed_over.items() if key in candidates[p]] for p in partitions}
        restored: dict[int, Restored] = {}
        pending = list(partitions)
        while pending:  # each round refuses one more snapshot of each partition still pending, or none is left
            choosing = list(pending)
            while choosing:  # the newest snapshot whose last event is the log's, per partition
                # Partitions at once: the GETs overlap, and so do the reads of
                # their bytes (gzip and sha256 let go of the GIL in their threads).
                chosen = await asyncio.gather(*(
                    _newest_trusted(snapshots, trusted, p, candidates[p], refused[p], firsts[p], ends[p],
                                    settings.idempotency_window) for p in choosing))
                restored.update(zip(choosing, chosen, strict=True))
                choosing = await _last_events_not_the_logs(heads, {p: restored[p] for p in choosing}, ends)
                for p in choosing:
                    key, (offset, _) = restored[p].snapshot, restored[p].last_event or (0, "")
                    assert key is not None, "only a snapshot names a last event to check"
                    why = _not_the_last_event(offset)
                    log.warning("restore: not using snapshot %s: %s", key, why)
                    refused[p].append((key, why))
            starts = {p: covered_offset(key) if (key := restored[p].snapshot) else firsts[p] for p in pending}
            broken = await _fold_tails(settings, trusted, {p: restored[p] for p in pending},
                                       {p: (starts[p], ends[p]) for p in pending}, progress)
            for p, why in broken.items():
                key = restored[p].snapshot
                assert key is not None, "only a snapshot's tail is checked against its heads"
                log.warning("restore: not using snapshot %s: %s", key, why)
                refused[p].append((key, why))
            pending = list(broken)
    finally:
        await heads.stop()
    return restored


async def cuts_the_log_holds(settings: PromoterSettings, trusted: TrustedKeys, snapshots: SnapshotStore,
                             heads: LogHeads, partition: int) -> AsyncIterator[tuple[str, Cut]]:
    """The partition's snapshots, newest first, that pass every check of their
    own bytes and of the log's bounds and whose last event the log holds. Their
    models' heads are the caller's to check, for the models it uses."""
    firsts, ends = await heads.bounds([partition])
    for key in await _candidates(snapshots, partition):
        cut = await _refusal(snapshots, trusted, partition, key, firsts[partition], ends[partition],
                             settings.idempotency_window)
        if isinstance(cut, Cut):
            offset, event_hash = cut.last_event
            if _holds(await heads.fields_at({partition: [offset]}, ends), partition, offset, event_hash):
                yield key, cut
                continue
            cut = _not_the_last_event(offset)
        log.warning("not using snapshot %s: %s", key, cut)


async def _candidates(snapshots: SnapshotStore | None, partition: int) -> list[str]:
    if snapshots is None:
        return []
    try:
        keys = await asyncio.to_thread(snapshots.keys, partition)
    except (S3Error, OSError) as error:
        log.warning("restore: cannot list the snapshots of partition %s (%s): restoring from the whole log",
                    partition, error)
        return []
    return keys


async def _newest_trusted(snapshots: SnapshotStore | None, trusted: TrustedKeys, partition: int,
                          keys: list[str], refused: list[tuple[str, str]], first: int, end: int,
                          window: IdempotencyWindow) -> Restored:
    """The newest snapshot not yet refused that passes every check of its own
    bytes and of the log's bounds; a fresh Restored (the whole log) when none
    does. Adds each snapshot it refuses to `refused`."""
    for key in keys:
        if key in dict(refused):
            continue
        why = await _refusal(snapshots, trusted, partition, key, first, end, window)
        if isinstance(why, Cut):
            return Restored.of(key, why, list(refused))
        log.warning("restore: not using snapshot %s: %s", key, why)
        refused.append((key, why))
    if keys:
        log.warning("restore: no usable snapshot of partition %s: folding its whole log", partition)
    return Restored(partition, refused=list(refused), window=window)


async def _refusal(snapshots: SnapshotStore | None, trusted: TrustedKeys, partition: int,
                   key: str, first: int, end: int, window: IdempotencyWindow) -> Cut | str:
    """The snapshot's cut, or why it is refused."""
    assert snapshots is not None, "keys come from a store"
    try:
        data = await asyncio.to_thread(snapshots.get, key)
    except (S3Error, OSError) as error:
        return f"unreadable ({error})"
    try:
        cut = await asyncio.to_thread(decode, data, trusted, window)
    except SnapshotRefused as error:
        return str(error)
    if cut.partition != partition or cut.events_offset != covered_offset(key):
        return f"it holds partition {cut.partition} up to offset {cut.events_offset}, not what its name says"
    if cut.events_offset > end:
        return (f"it covers {EVENTS_TOPIC}/{partition} up to offset {cut.events_offset}, beyond the log's "
                f"committed end {end} (a truncated or recreated log)")
    if cut.events_offset < first:
        return f"the log no longer holds its tail (it starts at offset {first})"
    return cut


async def _last_events_not_the_logs(heads: LogHeads, chosen: dict[int, Restored], ends: dict[int, int]) -> list[int]:
    """The partitions whose chosen snapshot names a last event the log does
    not hold at that offset (all partitions read at once)."""
    named = {p: r.last_event for p, r in chosen.items() if r.from_snapshot and r.last_event is not None}
    found = await heads.fields_at({p: [offset] for p, (offset, _) in named.items()}, ends)
    return [p for p, (offset, event_hash) in named.items() if not _holds(found, p, offset, event_hash)]


def _holds(found: Mapping[tuple[int, int], Mapping[str, Any] | None], partition: int, offset: int,
           event_hash: str) -> bool:
    """Whether the log's record at (partition, offset), as LogHeads found it, is the event with that hash."""
    fields = found[(partition, offset)]
    return fields is not None and fields.get("hash") == event_hash


def _not_the_last_event(offset: int) -> str:
    return f"the log's event at offset {offset} is not the last event it names"


async def _fold_tails(settings: PromoterSettings, trusted: TrustedKeys, into: dict[int, Restored],
                      ranges: dict[int, tuple[int, int]], progress: Progress) -> dict[int, str]:
    """Fold each partition's [start, end) into its Restored; returns the
    partitions whose snapshot the tail does not continue, with why."""
    broken: dict[int, str] = {}
    open_runs: OpenRuns = {}
    async for chunk in partition_runs(settings, EVENTS_TOPIC, ranges, PROVED_TOGETHER, progress):
        # Proven as a replay proves (decision 0013), in a thread: the event
        # loop keeps its turns while the chunk is proven.
        problems = await asyncio.to_thread(chunk_problems, [record.value for record in chunk], trusted, open_runs)
        await fold_chunk(into, broken, chunk, problems)
    return broken


async def fold_chunk(into: dict[int, Restored], broken: dict[int, str], chunk: list[ConsumerRecord],
                     problems: list[str | None]) -> list[ConsumerRecord]:
    """Fold a chunk's proven records into their partition's Restored, in order;
    returns the records skipped for their proof problem. A partition whose
    snapshot a record does not continue goes into `broken` with why."""
    turn, skipped = time.monotonic(), []
    for record, problem in zip(chunk, problems, strict=True):
        if time.monotonic() - turn > YIELD_EVERY_S:
            # A heartbeat's round trip takes several turns of the event loop:
            # give it one often, or a slow fold loses the group's partitions.
            await asyncio.sleep(0)
            turn = time.monotonic()
        if record.partition in broken:
            continue
        event = proven_or_refused(record.value, problem)
        if isinstance(event, Refused):
            log.error("restore: skipping an event the promoter did not sign: %s",
                      event.describe(record.partition, record.offset))
            skipped.append(record)
            continue
        if (why := into[record.partition].fold(event, record.offset, appended_at(record))) is not None:
            broken[record.partition] = why
    return skipped


def appended_at(record: ConsumerRecord) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, timezone.utc)

