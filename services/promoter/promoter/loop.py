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

from modelog.settings import COMMANDS_TOPIC
from promoter.partition import PartitionDecider
from promoter.restore import restore_partition
from promoter.settings import PromoterSettings

log = logging.getLogger("modelog.promoter")


class Promoter(ConsumerRebalanceListener):
    def __init__(self, settings: PromoterSettings):
        self.settings = settings
        self.deciders: dict[int, PartitionDecider] = {}
        self.ready = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.decided = 0  # commands decided by this process, for /metrics-style reporting

    async def run(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=self.settings.promoter_group_id,
            enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest",
            # A killed member holds its partitions until its session times out:
            # keep that short (the broker's minimum) so a restart resumes quickly.
            session_timeout_ms=6000, heartbeat_interval_ms=1500)
        await self.consumer.start()
        self.consumer.subscribe([COMMANDS_TOPIC], listener=self)
        try:
            while True:
                batches = await self.consumer.getmany(timeout_ms=100, max_records=self.settings.promoter_max_batch)
                for tp, records in batches.items():
                    await self._decide(tp, records)
        finally:
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
        await self._release([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned) -> None:
        for tp in sorted(assigned, key=lambda tp: tp.partition):
            started = time.monotonic()
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap, acks="all", enable_idempotence=True,
                transactional_id=f"{self.settings.promoter_group_id}-{tp.partition}", linger_ms=0)
            # init_transactions fences the partition's previous owner and aborts
            # its open transaction before we read the log.
            await producer.start()
            states, next_offset = await restore_partition(self.settings, tp.partition)
            self.deciders[tp.partition] = PartitionDecider(
                tp.partition, producer, self.settings.promoter_group_id, states, next_offset)
            self.consumer.seek(tp, next_offset)
            log.info("partition %s restored: %s models, resuming at command offset %s (%.2fs)",
                     tp.partition, len(states), next_offset, time.monotonic() - started)
        if assigned:
            self.ready.set()

    async def _release(self, partitions: list[int]) -> None:
        for partition in partitions:
            decider = self.deciders.pop(partition, None)
            if decider is not None:
                await decider.producer.stop()
