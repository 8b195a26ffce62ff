"""The promoter's consumer loop: own the command partitions Kafka assigns us,
restore each from the event log, then decide batches as they come.

Exactly once without a cross-topic transaction: a decision's events are one
Kafka transaction; the position of each decided command lives in those events;
a partition's next owner restores state and position from the committed log
and fences the previous owner through the per-partition transactional id.
"""

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ProducerFenced

from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import committed_consumer
from modelog_platform.identity.tokens import verifier_from_settings
from modelog_platform.log_signing import signing_key
from modelog_platform.settings import COMMANDS_TOPIC
from modelog_platform.tasks import start_critical
from promoter.authentication import CommandAuthenticator, SpentTokens
from promoter.default_policy import DefaultPolicyFollower
from promoter.partition import PartitionDecider
from promoter.restore import restore_partitions
from promoter.settings import PromoterSettings

log = logging.getLogger("modelog.promoter")


class Promoter(ConsumerRebalanceListener):
    def __init__(self, settings: PromoterSettings):
        self.settings = settings
        self.deciders: dict[int, PartitionDecider] = {}
        self.to_restore: set[int] = set()  # assigned, paused until restored
        self.ready = asyncio.Event()
        self.restoring = ""  # how far a restore has read, while one runs
        self.consumer: AIOKafkaConsumer | None = None
        self.default_policy = DefaultPolicyFollower(settings)
        self.decided = 0  # commands decided by this process, for /metrics-style reporting
        # Built now, so a promoter that requires signed commands but trusts no
        # issuer fails at start instead of refusing every command.
        self.authenticator = CommandAuthenticator(
            verifier_from_settings(settings), SpentTokens(), settings.command_token_max_ttl_s,
        ) if settings.require_signed_commands else None
        # Read now for the same reason: no key, no promoter.
        self.signing_key = signing_key(settings)

    async def run(self) -> None:
        follower = start_critical(self.default_policy.run(), "default policy follower")
        await self.default_policy.caught_up.wait()  # decide nothing before the default is known
        self.consumer = committed_consumer(self.settings, group=self.settings.promoter_group_id)
        await self.consumer.start()
        self.consumer.subscribe([COMMANDS_TOPIC], listener=self)
        try:
            while True:
                if self.to_restore:
                    await self._restore_pending()
                batches = await self.consumer.getmany(timeout_ms=100, max_records=self.settings.promoter_max_batch)
                # Partitions are independent (own state, own transactional
                # producer): their transactions' round trips overlap.
                await asyncio.gather(*(self._decide(tp, records) for tp, records in batches.items()))
        finally:
            follower.cancel()
            await self._release(list(self.deciders))
            await self.consumer.stop()

    async def _decide(self, tp: TopicPartition, records) -> None:
        decider = self.deciders.get(tp.partition)
        if decider is None:
            return  # revoked while we polled
        try:
            self.decided += await decider.decide_batch(records)
        except ProducerFenced:
            # Another instance owns this partition now; its restore already
            # includes everything we committed. Nothing of ours landed twice.
            log.warning("fenced on partition %s; dropping it", tp.partition)
            await self._release([tp.partition])

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
        producers = await asyncio.gather(*(self._start_producer(p) for p in partitions))
        restored = await restore_partitions(self.settings, partitions, self._restore_progress)
        owned = {tp.partition for tp in self.consumer.assignment()}
        for partition, producer in zip(partitions, producers, strict=True):
            if partition not in owned:  # revoked meanwhile
                await producer.stop()
                continue
            into = restored[partition]
            if self.authenticator is not None:
                for token_id, command_id, decided_at in into.spent_tokens:
                    self.authenticator.remember(token_id, command_id, decided_at)
            self.deciders[partition] = PartitionDecider(
                partition, producer, into.states, into.next_command, self.default_policy, self.signing_key,
                self.authenticator)
            tp = TopicPartition(COMMANDS_TOPIC, partition)
            self.consumer.seek(tp, into.next_command)
            self.consumer.resume(tp)
        log.info("restored %s partition(s) from the event log in %.2fs: %s models",
                 len(partitions), time.monotonic() - started,
                 sum(len(r.states) for r in restored.values()))
        if self.deciders and not self.to_restore:
            self.ready.set()

    def _restore_progress(self, read: int, total: int) -> None:
        self.restoring = f"{read:,} of {total:,} log offsets read"

    async def _start_producer(self, partition: int) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **kafka_connection(self.settings), acks="all", enable_idempotence=True,
            transactional_id=f"{self.settings.promoter_group_id}-{partition}", linger_ms=0)
        await producer.start()
        return producer

    async def _release(self, partitions: list[int]) -> None:
        for partition in partitions:
            decider = self.deciders.pop(partition, None)
            if decider is not None:
                await decider.producer.stop()
