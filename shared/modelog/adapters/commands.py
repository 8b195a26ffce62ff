"""Publishing commands to modelog.commands, keyed by model name so each model's
commands are decided in order by one promoter partition."""

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer

from modelog.codec import encode
from modelog.domain import Command
from modelog.settings import COMMANDS_TOPIC, EngineEndpoints


class CommandPublisher:
    def __init__(self, endpoints: EngineEndpoints):
        self.producer = AIOKafkaProducer(
            bootstrap_servers=endpoints.kafka_bootstrap,
            enable_idempotence=True,  # a retried send is not a second command
            acks="all",
            linger_ms=0,
        )

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, command: Command) -> None:
        await self.producer.send_and_wait(COMMANDS_TOPIC, encode(command), key=command.model.encode())

    async def publish_many(self, commands: Iterable[Command]) -> None:
        """Every command in flight at once (per-key order is kept), then all acknowledged."""
        sent = [await self.producer.send(COMMANDS_TOPIC, encode(c), key=c.model.encode()) for c in commands]
        await asyncio.gather(*sent)


@asynccontextmanager
async def command_publisher(endpoints: EngineEndpoints) -> AsyncIterator[CommandPublisher]:
    publisher = CommandPublisher(endpoints)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()
