"""The promoter's consumer loop: own the command partitions Kafka assigns us,
restore each from the event log, then decide batches as they come.

Exactly once without a cross-topic transaction: a decision's events are one
Kafka transaction; the position of each decided command lives in those events;
a partition's next owner restores state and position from the committed log
and fences the previous owner through the per-partition transactional id.

Restore starts from the partition's newest trustworthy snapshot, when there is
one (promoter.restore), and snapshots are written as the partition moves on
(promoter.snapshotting). A model restored from a snapshot whose head the tail
did not prove is checked against the log before its first decision here: its
head event is read at the offset the snapshot recorded and must be that model's,
at that seq, with that hash. One that is not refuses the whole snapshot, and
the partition is restored again without it. Heads not yet asked for are
checked while the partition is idle.
"""

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ProducerFenced

from modelog_platform.adapters.log_reader import committed_consumer
from modelog_platform.identity.tokens import verifier_from_settings
from modelog_platform.log_signing import signing_key, trusted_keys
from modelog_platform.settings import COMMANDS_TOPIC
from modelog_platform.tasks import start_critical
from promoter.authentication import CommandAuthenticator, SpentTokens
from promoter.default_policy import DefaultPolicyFollower
from promoter.log_heads import LogHeads
from promoter.model_states import StoredStateUnreadable
from promoter.partition import PartitionDecider, partition_producer
from promoter.restore import Restored, restore_partitions
from promoter.settings import PromoterSettings
from promoter.snapshot_store import SnapshotStore
from promoter.snapshots import head_problem
from promoter.snapshotting import PartitionSnapshots

log = logging.getLogger("modelog.promoter")

RESTORE_MAY_TAKE_MS = 30 * 60 * 1000  # Kafka's default gap between polls is 5 minutes
HEADS_CHECKED_WHEN_IDLE = 20  # per idle poll: a command arriving meanwhile waits for at most these


@dataclass
class RestoredFrom:
    """How a partition was last restored, for /readyz and the status endpoint."""

    snapshot: str | None  # None: the whole log
    refused: list[tuple[str, str]]  # (snapshot, why) of those passed over
    seconds: float
    at: datetime


class Promoter(ConsumerRebalanceListener):
    def __init__(self, settings: PromoterSettings):
        self.settings = settings
        self.deciders: dict[int, PartitionDecider] = {}
        self.to_restore: set[int] = set()  # assigned, paused until restored
        self.ready = asyncio.Event()
        self.restoring = ""  # how far a restore has read, while one runs
        self.consumer: AIOKafkaConsumer | None = None
        self.decided = 0  # commands decided by this process, for /metrics-style reporting
        # Built now, so a promoter that requires signed commands but trusts no
        # issuer fails at start instead of refusing every command.
        self.authenticator = CommandAuthenticator(
            verifier_from_settings(settings), SpentTokens(), settings.command_token_max_ttl_s,
        ) if settings.require_signed_commands else None
        # Read now for the same reason: no key, no promoter.
        self.signing_key = signing_key(settings)
        self.trusted = trusted_keys(settings)
        self.snapshot_store = SnapshotStore(settings) if (
            settings.snapshot_every_events or settings.snapshot_every_s) else None
        self.default_policy = DefaultPolicyFollower(settings, self.snapshot_store)
        self.snapshots: dict[int, PartitionSnapshots] = {}
        self.restored_from: dict[int, RestoredFrom] = {}
        # model -> head offset, per partition: restored from a snapshot, head not yet checked against the log.
        self.unverified: dict[int, dict[str, int]] = {}
        self.passed_over: dict[str, str] = {}  # snapshot -> why: refused after its restore, not tried again
        self.heads: LogHeads | None = None
        self.heads_lock = asyncio.Lock()  # one consumer reads heads: one check at a time

    async def run(self) -> None:
        # The default policy is read beside the group join and the restore,
        # which do not need it; only deciding waits for it (below).
        follower = start_critical(self.default_policy.run(), "default policy follower")
        # Restoring runs between two polls, and folding a long log without a
        # usable snapshot may take minutes: liveness is the heartbeats (which
        # run on, as restore yields to the loop), not the gap between polls.
        self.consumer = committed_consumer(self.settings, group=self.settings.promoter_group_id,
                                           max_poll_interval_ms=RESTORE_MAY_TAKE_MS,
                                           group_instance_id=self.settings.promoter_instance_id)
        self.heads = LogHeads(self.settings)
        await self.consumer.start()
        self.consumer.subscribe([COMMANDS_TOPIC], listener=self)
        try:
            while True:
                if self.to_restore:
                    await self._restore_pending()
                if not self.default_policy.caught_up.is_set():
                    # Decide nothing before the default is known; partitions
                    # assigned meanwhile are restored on the next turn.
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self.default_policy.caught_up.wait(), timeout=0.1)
                    continue
                batches = await self.consumer.getmany(timeout_ms=100, max_records=self.settings.promoter_max_batch)
                # Partitions are independent (own state, own transactional
                # producer): their transactions' round trips overlap.
                await asyncio.gather(*(self._decide(tp, records) for tp, records in batches.items()))
                if not batches:
                    self._snapshot_due_partitions()  # a burst's last events get their snapshot by time
                    await self._check_heads_while_idle()
        finally:
            follower.cancel()
            await self._release(list(self.deciders))
            await self.consumer.stop()
            await self.heads.stop()

    async def _decide(self, tp: TopicPartition, records) -> None:
        decider = self.deciders.get(tp.partition)
        if decider is None:
            return  # revoked while we polled
        unverified = self.unverified.get(tp.partition)
        if unverified or decider.states.stored:
            named = {(r.key or b"").decode("utf-8", "replace") for r in records}
            models = named & unverified.keys() if unverified else set()
            if models and not await self._check_heads(tp.partition, sorted(models)):
                return  # the partition is being restored again, without that snapshot
            if not await self._read_back(tp.partition, named & decider.states.stored.keys()):
                return
        try:
            self.decided += await decider.decide_batch(records)
        except ProducerFenced:
            # Another instance owns this partition now; its restore already
            # includes everything we committed. Nothing of ours landed twice.
            log.warning("fenced on partition %s; dropping it", tp.partition)
            await self._release([tp.partition])
            assert self.consumer is not None, "decisions happen inside run(), once the consumer runs"
            if tp in self.consumer.assignment():  # no new owner: a restarted broker aborted our transaction
                self.ready.clear()
                self.consumer.pause(tp)
                self.to_restore.add(tp.partition)  # restored from the committed log, as on assignment
            return
        self._snapshot_due_partitions([tp.partition])

    def _snapshot_due_partitions(self, partitions: list[int] | None = None) -> None:
        for partition in self.deciders if partitions is None else partitions:
            decider, snapshots = self.deciders.get(partition), self.snapshots.get(partition)
            if decider is not None and snapshots is not None and snapshots.due(decider):
                snapshots.start(decider, self.authenticator.spent if self.authenticator else None)

    async def _check_heads(self, partition: int, models: list[str]) -> bool:
        """Check these models' snapshot heads against the log; on the first
        that does not match, refuse the snapshot and restore the partition
        again without it (False)."""
        decider, unverified = self.deciders.get(partition), self.unverified.get(partition, {})
        assert self.heads is not None, "heads are checked inside run(), once the reader runs"
        if decider is None:
            return False
        offsets = {model: unverified[model] for model in models if model in unverified}
        async with self.heads_lock:
            found = await self.heads.fields_at({partition: offsets.values()})
        if self.deciders.get(partition) is not decider:
            return False  # released or restored again meanwhile
        for model, offset in offsets.items():
            # The head beside a stored state: checking it does not read the state back.
            problem = head_problem(found[(partition, offset)], model, decider.states.head(model), self.trusted)
            if problem is not None:
                await self._refuse_restored_snapshot(partition, f"model {model!r}'s head at offset {offset}: {problem}")
                return False
            unverified.pop(model, None)
        return True

    async def _read_back(self, partition: int, models: set[str]) -> bool:
        """Read back the stored states of the models a batch is about to decide
        for; a state that does not read back is never decided on: the snapshot
        is refused and the partition restored again without it (False)."""
        decider = self.deciders[partition]
        for model in models:
            try:
                decider.states[model]
            except StoredStateUnreadable as error:
                await self._refuse_restored_snapshot(partition, str(error))
                return False
        return True

    async def _check_heads_while_idle(self) -> None:
        for partition, unverified in list(self.unverified.items()):
            if unverified:
                await self._check_heads(partition, sorted(unverified, key=unverified.__getitem__)[
                    :HEADS_CHECKED_WHEN_IDLE])
                return

    async def _refuse_restored_snapshot(self, partition: int, why: str) -> None:
        assert self.consumer is not None, "decisions happen inside run(), once the consumer runs"
        snapshot = self.restored_from[partition].snapshot
        log.warning("restore: not using snapshot %s: %s; restoring partition %s again without it",
                    snapshot, why, partition)
        if snapshot is not None:
            self.passed_over[snapshot] = why
        await self._release([partition])
        tp = TopicPartition(COMMANDS_TOPIC, partition)
        if tp in self.consumer.assignment():
            self.ready.clear()
            self.consumer.pause(tp)
            self.to_restore.add(partition)

    async def on_partitions_revoked(self, revoked) -> None:
        self.ready.clear()
        self.to_restore -= {tp.partition for tp in revoked}
        await self._release([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned) -> None:
        # Restoring takes a while; doing it inside this callback would stall
        # the group's heartbeats. Hold the partitions and restore in the loop.
        assert self.consumer is not None, "partitions are assigned only once the consumer runs"
        self.consumer.pause(*assigned)
        self.to_restore |= {tp.partition for tp in assigned}

    async def _restore_pending(self) -> None:
        assert self.consumer is not None, "restoring happens inside run(), once the consumer runs"
        partitions, started = sorted(self.to_restore), time.monotonic()
        self.to_restore.clear()
        # init_transactions fences each partition's previous owner and aborts
        # its open transaction, so the log we read next is final.
        producers = await asyncio.gather(*(partition_producer(self.settings, self.settings.promoter_group_id, p)
                                         for p in partitions))
        restored = await restore_partitions(self.settings, partitions, self._restore_progress,
                                            self.snapshot_store, dict(self.passed_over))
        owned = {tp.partition for tp in self.consumer.assignment()}
        for partition, producer in zip(partitions, producers, strict=True):
            if partition not in owned:  # revoked meanwhile
                await producer.stop()
                continue
            self._start_deciding(partition, producer, restored[partition], time.monotonic() - started)
        log.info("restored %s partition(s) in %.2fs: %s models, %s from a snapshot",
                 len(partitions), time.monotonic() - started,
                 sum(len(r.states) for r in restored.values()), sum(bool(r.snapshot) for r in restored.values()))
        if self.deciders and not self.to_restore:
            self.ready.set()

    def _start_deciding(self, partition: int, producer: AIOKafkaProducer, into: Restored, seconds: float) -> None:
        assert self.consumer is not None, "restoring happens inside run(), once the consumer runs"
        decider = PartitionDecider(partition, producer, into.states, into.next_command, self.default_policy,
                                   self.signing_key, self.authenticator, into.window)
        decider.head_offsets, decider.last_event = into.head_offsets, into.last_event
        if self.authenticator is not None:
            for token_id, command_id, decided_at in into.spent_tokens:
                self.authenticator.remember(token_id, command_id, decided_at)
            for token_id, command_id, forget_after in into.spent_until:
                self.authenticator.spent.spend(token_id, command_id, forget_after)
            decider.spent_token_ids.update(t for t, _, _ in (*into.spent_tokens, *into.spent_until))
        self.deciders[partition] = decider
        self.unverified[partition] = into.unverified
        self.restored_from[partition] = RestoredFrom(into.snapshot, into.refused, round(seconds, 3),
                                                     datetime.now(timezone.utc))
        if self.snapshot_store is not None:
            self.snapshots[partition] = PartitionSnapshots(partition, self.settings, self.snapshot_store,
                                                           self.signing_key)
        tp = TopicPartition(COMMANDS_TOPIC, partition)
        self.consumer.seek(tp, into.next_command)
        self.consumer.resume(tp)

    def _restore_progress(self, read: int, total: int) -> None:
        self.restoring = f"{read:,} of {total:,} log offsets read"

    async def _release(self, partitions: list[int]) -> None:
        for partition in partitions:
            self.unverified.pop(partition, None)
            self.snapshots.pop(partition, None)  # a write under way finishes: it is a committed cut
            decider = self.deciders.pop(partition, None)
            if decider is not None:
                await decider.producer.stop()
