"""Publishing commands to modelog.commands, keyed by model name so each model's
commands are decided in order by one promoter partition.

A command carries the caller's bearer token in the `authorization` record
header; the promoter refuses a command whose token does not prove its actor.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer

from modelog_contract.codec import encode
from modelog_contract.domain import Command
from modelog_platform import tracing
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import KEY_PARTITIONER
from modelog_platform.identity.tokens import bearer_token
from modelog_platform.settings import COMMANDS_TOPIC, DENIALS_TOPIC, EngineEndpoints

AUTHORIZATION_HEADER = "authorization"
# Binds a command to a token: returns the command with its actor as the token
# proves it, and the token.
Signer = Callable[[Command], tuple[Command, str]]


class CommandPublisher:
    def __init__(self, endpoints: EngineEndpoints, sign: Signer | None = None):
        self.producer = AIOKafkaProducer(
            **kafka_connection(endpoints),
            enable_idempotence=True,  # a retried send is not a second command
            acks="all",
            linger_ms=0,
            partitioner=KEY_PARTITIONER,  # a model's commands land where model_partition says
        )
        self.sign = sign  # for commands published without a token of their own

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, command: Command, token: str | None = None) -> Command:
        """Publish `command`, signed with `token` if given; returns what was published."""
        if token is None and self.sign is not None:
            command, token = self.sign(command)
        await self.producer.send_and_wait(COMMANDS_TOPIC, encode(command), key=command.model.encode(),
                                          headers=record_headers(token))
        return command

    async def publish_many(self, commands: Iterable[tuple[Command, str | None]]) -> None:
        """Every (command, token) in flight at once (per-key order is kept), then
        all acknowledged; a command without a token is signed as `publish` does."""
        sent = []
        for command, token in commands:
            if token is None and self.sign is not None:
                command, token = self.sign(command)
            sent.append(await self.producer.send(COMMANDS_TOPIC, encode(command), key=command.model.encode(),
                                                 headers=record_headers(token)))
        await asyncio.gather(*sent)

    async def publish_denial(self, record: bytes, key: str, topic: str = DENIALS_TOPIC) -> None:
        """A write the registrar refused before it became a command, to
        modelog.denials: keyed by model name (or "-") and partitioned as commands
        are, by this same producer."""
        await self.producer.send_and_wait(topic, record, key=key.encode())


@asynccontextmanager
async def command_publisher(endpoints: EngineEndpoints, sign: "Signer | None" = None) -> AsyncIterator[CommandPublisher]:
    publisher = CommandPublisher(endpoints, sign=sign)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()


def authorization_header(token: str | None) -> list[tuple[str, bytes]] | None:
    """The record headers that sign a command with `token` (none without one)."""
    return [(AUTHORIZATION_HEADER, f"Bearer {token}".encode())] if token else None


def record_headers(token: str | None) -> list[tuple[str, bytes]] | None:
    """A command record's headers: its token, and the trace it belongs to (where traced)."""
    headers = (authorization_header(token) or []) + tracing.kafka_headers()
    return headers or None


def command_token(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    """The bearer token a command record carries, if any."""
    for key, value in headers or ():
        if key.lower() == AUTHORIZATION_HEADER:
            return bearer_token((value or b"").decode("utf-8", "replace"))
    return None
