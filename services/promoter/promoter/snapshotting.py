"""When a partition's snapshot is written, and writing it without holding up
decisions.

A snapshot is due once `snapshot_every_events` events were appended since the
last one, or `snapshot_every_s` seconds passed with something new; it is
taken right after a batch committed, so it is a committed position. Taking it
is a copy of the states' dicts (states are immutable: the copy is a consistent
cut, and later decisions replace entries of the live dicts, never change a
state); serialising,
compressing, signing and the PUT run in a worker thread, at most one per
partition at a time, and only models whose seq moved since the last snapshot
are serialised again (promoter.snapshots.SerialisedStates; a model still as the
last snapshot's JSON is written as that JSON, and a model untouched since the
snapshot before goes back to being held as that JSON). Then all but the
newest `snapshot_keep` are removed.
"""

import asyncio
import logging
import time
from datetime import datetime, timezone
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from promoter.authentication import SpentTokens
from promoter.model_states import ModelStates
from promoter.partition import PartitionDecider
from promoter.settings import PromoterSettings
from promoter.snapshot_store import SnapshotStore, snapshot_key
from promoter.snapshots import Cut, SerialisedStates, encode

log = logging.getLogger("modelog.promoter")


class PartitionSnapshots:
    def __init__(self, partition: int, settings: PromoterSettings, store: SnapshotStore,
                 signing_key: Ed25519PrivateKey, events_written: int = 0):
        self.partition, self.settings, self.store, self.signing_key = partition, settings, store, signing_key
        self.cache = SerialisedStates()
        self.events_at_last = events_written
        self.last_at = time.monotonic()
        self.writing: asyncio.Task[None] | None = None
        self.newest: tuple[str, datetime] | None = None  # the last one this process wrote, and when

    def due(self, decider: PartitionDecider) -> bool:
        if self.writing is not None and not self.writing.done():
            return False
        new = decider.events_written - self.events_at_last
        if decider.last_event is None or new <= 0:
            return False
        every_events, every_s = self.settings.snapshot_every_events, self.settings.snapshot_every_s
        return bool((every_events and new >= every_events) or (every_s and time.monotonic() - self.last_at >= every_s))

    def start(self, decider: PartitionDecider, spent: SpentTokens | None) -> None:
        """Take the cut now (synchronously: no decision lands between its parts)
        and write it in the background."""
        assert decider.last_event is not None, "a snapshot covers at least one event"
        now = datetime.now(timezone.utc)
        cut = Cut(partition=self.partition, events_offset=decider.last_event[0] + 1,
                  command_offset=decider.next_offset, last_event=decider.last_event,
                  states=decider.states.copy(), head_offsets=dict(decider.head_offsets),
                  spent_tokens=_still_spent(decider, spent, now), written_at=now, window=decider.window)
        self.events_at_last, self.last_at = decider.events_written, time.monotonic()
        self.writing = asyncio.create_task(self._write(cut, decider.states))

    async def _write(self, cut: Cut, live: ModelStates) -> None:
        key = snapshot_key(cut.partition, cut.events_offset)
        started = time.monotonic()
        try:
            data = await asyncio.to_thread(encode, cut, self.signing_key, self.cache)
            # Models idle since the last snapshot go back to the JSON just written.
            idle = live.keep_as_json({name: self.cache.states[name] for name in self.cache.idle}, cut.states.decoded)
            await asyncio.to_thread(self.store.put, key, data)
            self.newest = (key, cut.written_at)
            removed = await asyncio.to_thread(self.store.keep_newest, self.partition, self.settings.snapshot_keep)
        except Exception:  # a snapshot only saves restore time: never stop deciding for one
            log.exception("snapshot %s not written", key)
            return
        log.info("snapshot %s written: %s models (%s idle, back to their JSON), %s bytes, in %.2fs; "
                 "%s older removed", key, len(cut.states), idle, len(data), time.monotonic() - started, len(removed))


def _still_spent(decider: PartitionDecider, spent: SpentTokens | None,
                 now: datetime) -> tuple[tuple[str, UUID, datetime], ...]:
    """The token ids this partition's commands spent that are still remembered
    (command id, forget after); forgotten ones leave the partition's set."""
    if spent is None:
        return ()
    kept = []
    for token_id in list(decider.spent_token_ids):
        entry = spent.spent.get(token_id)
        if entry is None or entry[1] < now:
            decider.spent_token_ids.discard(token_id)
        else:
            kept.append((token_id, entry[0], entry[1]))
    return tuple(kept)
