"""Follows the registry-wide default policy, wherever its stream lives.

The default policy is an event stream of its own (DEFAULT_POLICY_STREAM), so
whichever promoter instance owns its partition decides changes to it; every
instance tails that one events partition to know the policy in force. Models
in other partitions see a change once it is committed and read here; each
decision records which default (by seq) it ran under. Only PolicySet events
the promoter signed count: a forged one in the log changes nothing.
"""

import asyncio
import logging

from aiokafka import TopicPartition

from modelog_contract.domain.events import PolicySet
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, PolicyInForce
from modelog_contract.proven import Refused, proven_event
from modelog_platform.adapters.log_reader import assigned_consumer, model_partition
from modelog_platform.log_signing import trusted_keys
from modelog_platform.settings import EVENTS_TOPIC
from promoter.settings import PromoterSettings

log = logging.getLogger("modelog.promoter")


class DefaultPolicyFollower:
    def __init__(self, endpoints: PromoterSettings):
        self.endpoints = endpoints
        self.trusted = trusted_keys(endpoints)
        self.in_force = PolicyInForce()
        self.caught_up = asyncio.Event()  # read the stream to its end at least once

    async def run(self) -> None:
        partition = model_partition(DEFAULT_POLICY_STREAM, self.endpoints.topic_partitions)
        tp = TopicPartition(EVENTS_TOPIC, partition)
        async with assigned_consumer(self.endpoints, EVENTS_TOPIC, [partition]) as consumer:
            await consumer.seek_to_beginning(tp)
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
