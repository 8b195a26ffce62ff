"""Follows the registry-wide default policy, wherever its stream lives.

The default policy is an event stream of its own (DEFAULT_POLICY_STREAM), so
whichever promoter instance owns its partition decides changes to it; every
instance tails that one events partition to know the policy in force. Models
in other partitions see a change once it is committed and read here; each
decision records which default (by seq) it ran under. Only PolicySet events
the promoter signed count: a forged one in the log changes nothing.

Reading starts at the newest snapshot of that partition the log bears out, so
a restart reads its tail, not the whole partition's history: the snapshot is
the promoter's (signed), its last event is the log's, and the default's head
event it names is read from the log and proven before the policy in it counts.
A snapshot that fails any of that is passed over for an older one, and with
none left the partition is read from its first offset.
"""

import asyncio
import logging

from aiokafka import TopicPartition

from modelog_contract.codec import EVENTS
from modelog_contract.domain.events import PolicySet
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, PolicyInForce
from modelog_contract.domain.upcasters import upcast
from modelog_contract.proven import Refused, proven_event
from modelog_platform.adapters.log_reader import assigned_consumer, model_partition
from modelog_platform.log_signing import trusted_keys
from modelog_platform.settings import EVENTS_TOPIC
from promoter.log_heads import LogHeads
from promoter.restore import cuts_the_log_holds
from promoter.settings import PromoterSettings
from promoter.snapshot_store import SnapshotStore
from promoter.snapshots import Cut, head_problem

log = logging.getLogger("modelog.promoter")


class DefaultPolicyFollower:
    def __init__(self, endpoints: PromoterSettings, snapshots: SnapshotStore | None = None):
        self.endpoints = endpoints
        self.snapshots = snapshots
        self.trusted = trusted_keys(endpoints)
        self.in_force = PolicyInForce()
        self.caught_up = asyncio.Event()  # read the stream to its end at least once
        self.started_from: str | None = None  # the snapshot reading started at; None: the first offset

    async def run(self) -> None:
        partition = model_partition(DEFAULT_POLICY_STREAM, self.endpoints.topic_partitions)
        tp = TopicPartition(EVENTS_TOPIC, partition)
        start = await self._snapshot_offset(partition)
        async with assigned_consumer(self.endpoints, EVENTS_TOPIC, [partition]) as consumer:
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
            end = (await consumer.end_offsets([tp]))[tp]
            while True:
                # Asked before each fetch: a stream already read to its end is
                # caught up now, not after a fetch that waits for new records.
                if not self.caught_up.is_set() and await consumer.position(tp) >= end:
                    self.caught_up.set()
                for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    if record.key != DEFAULT_POLICY_STREAM.encode():
                        continue
                    event = proven_event(record.value, self.trusted)
                    if isinstance(event, Refused):
                        log.error("default policy: skipping an event the promoter did not sign: %s",
                                  event.describe(record.partition, record.offset))
                    elif isinstance(event.payload, PolicySet):
                        self.in_force = PolicyInForce(policy=event.payload.policy, seq=event.seq)

    async def _snapshot_offset(self, partition: int) -> int | None:
        """Where the newest usable snapshot leaves off, with `in_force` set to
        the default as of there; None when no snapshot will do."""
        if self.snapshots is None:
            return None
        heads = LogHeads(self.endpoints)
        try:
            async for key, cut in cuts_the_log_holds(self.endpoints, self.trusted, self.snapshots, heads,
                                                     partition):
                in_force = await self._in_force_at(heads, partition, cut)
                if isinstance(in_force, str):
                    log.warning("default policy: not using snapshot %s: %s", key, in_force)
                    continue
                self.in_force, self.started_from = in_force, key
                log.info("default policy: reading on from snapshot %s (seq %s in force)", key, in_force.seq)
                return cut.events_offset
        finally:
            await heads.stop()
        log.info("default policy: no usable snapshot of partition %s: reading it from its first offset", partition)
        return None

    async def _in_force_at(self, heads: LogHeads, partition: int, cut: Cut) -> PolicyInForce | str:
        """The default in force at the cut, from its head event as the log
        holds it, or why the cut's head is not the log's."""
        offset = cut.head_offsets.get(DEFAULT_POLICY_STREAM)
        if offset is None:
            return PolicyInForce()  # no default set before the cut: the built-in one
        fields = (await heads.fields_at({partition: [offset]}))[(partition, offset)]
        problem = head_problem(fields, DEFAULT_POLICY_STREAM, cut.states.head(DEFAULT_POLICY_STREAM), self.trusted)
        if problem is not None or fields is None:
            return f"the default policy's head at offset {offset}: {problem}"
        event = EVENTS.validate_python(upcast(fields))
        if not isinstance(event.payload, PolicySet):
            return f"the default policy's head at offset {offset} is a {event.payload.type}, not a PolicySet"
        return PolicyInForce(policy=event.payload.policy, seq=event.seq)
