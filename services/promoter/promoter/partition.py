"""One command partition's decider: decide a batch, append its events in one
Kafka transaction, and only then believe the new state.

The transactional id is per partition, so whoever owns the partition next
fences this instance: a zombie's transaction fails instead of landing twice.
"""

import asyncio
import logging
from datetime import datetime, timezone
from uuid import NAMESPACE_URL, uuid5

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.codec import decode_command, encode
from modelog_contract.domain import ModelState, decide, evolve
from modelog_contract.domain.decider import reject_malformed, reject_unauthenticated
from modelog_contract.domain.events import CommandPosition, CommandRejected, Event
from modelog_contract.domain.idempotency import DEFAULT_WINDOW, IdempotencyWindow
from modelog_contract.domain.types import InvalidName, check_model_name
from modelog_contract.signing import sign_event
from modelog_platform import metrics, tracing
from modelog_platform.adapters.commands import command_token
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.settings import COMMANDS_TOPIC, DEAD_LETTERS_TOPIC, EVENTS_TOPIC, EngineEndpoints
from promoter.authentication import CommandAuthenticator
from promoter.default_policy import DefaultPolicyFollower
from promoter.model_states import ModelStates

log = logging.getLogger("modelog.promoter")
LOG_APPEND_TIME = 1  # Kafka's timestamp type of a record the broker stamped
YIELD_EVERY = 20  # commands decided between two turns of the event loop
# The broker takes messages (a produce batch) up to about 1 MiB (message.max.bytes).
MAX_PRODUCE_BATCH_BYTES = 512 * 1024


async def partition_producer(endpoints: EngineEndpoints, group_id: str, partition: int) -> AIOKafkaProducer:
    """The partition's transactional producer, started: its start fences the
    partition's previous owner and aborts that owner's open transaction."""
    producer = AIOKafkaProducer(
        **kafka_connection(endpoints), acks="all", enable_idempotence=True,
        transactional_id=f"{group_id}-{partition}",
        # A batch's events are all handed over before the producer's sender
        # runs, so they leave together anyway: lingering would only hold
        # the commit back.
        linger_ms=0,
        # One produce request carries one batch per partition, and an
        # idempotent producer has one request in flight per partition: at
        # the default 16 KiB (some ten signed events) a burst's batch of
        # hundreds of events took tens of round trips before its commit.
        # Half the broker's largest message: a whole batch goes in one.
        max_batch_size=MAX_PRODUCE_BATCH_BYTES)
    await producer.start()
    return producer


class PartitionDecider:
    def __init__(self, partition: int, producer: AIOKafkaProducer,
                 states: ModelStates, next_offset: int, default_policy: DefaultPolicyFollower,
                 signing_key: Ed25519PrivateKey, authenticator: CommandAuthenticator | None = None,
                 window: IdempotencyWindow = DEFAULT_WINDOW):
        self.partition = partition
        self.window = window  # the command ids each model remembers, as restore folded them
        self.signing_key = signing_key  # the log writer's: readers refuse events it did not sign
        self.authenticator = authenticator  # None: commands are not required to be signed
        self.producer = producer
        self.default_policy = default_policy
        self.states = states
        self.next_offset = next_offset  # the first command not yet decided
        # Where each model's head event sits in modelog.events, and the last
        # event this partition committed (offset, hash): what a snapshot of the
        # states records, so a restore can check them against the log.
        self.head_offsets: dict[str, int] = {}
        self.last_event: tuple[int, str] | None = None
        self.events_written = 0
        self.spent_token_ids: set[str] = set()  # spent by this partition's commands, for its snapshot

    async def decide_batch(self, records: list[ConsumerRecord]) -> int:
        """Decide the records not yet decided; returns how many were."""
        fresh = [r for r in records if r.offset >= self.next_offset]
        if not fresh:
            return 0
        # The states this batch changes, tentative until the transaction
        # commits: only they are kept aside, not a copy of the whole partition.
        changed: dict[str, ModelState] = {}
        outgoing: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []
        outcomes: list[tuple[str, str]] = []
        for decided, record in enumerate(fresh):
            if decided and decided % YIELD_EVERY == 0:
                # Deciding is CPU work (token checks, hashing, signing): hand the
                # loop back now and then, so the consumer's heartbeats and the
                # other partitions' transactions go on during a burst; a loop
                # held longer than the session timeout loses every partition.
                await asyncio.sleep(0)
            outgoing.extend(self._decide_record(changed, record, outcomes))
        end = fresh[-1].offset + 1
        async with self.producer.transaction():
            # No group offsets in the transaction: the position we resume from
            # is the one the events record, and committing offsets too would
            # add ~25 ms to every decision.
            sent = [await self.producer.send(topic, value, key=key, headers=headers or None,
                                             partition=self.partition if topic == EVENTS_TOPIC else None)
                    for topic, key, value, headers in outgoing]
        written = [(key.decode(), (await future).offset)
                   for (topic, key, _, _), future in zip(outgoing, sent, strict=True) if topic == EVENTS_TOPIC]
        metrics.decided(outcomes, (r.timestamp if r.timestamp_type == LOG_APPEND_TIME else None for r in fresh))
        self.states.update(changed)
        self.next_offset = end
        for model, offset in written:
            self.head_offsets[model] = offset
        if written:
            last_model, last_offset = written[-1]
            self.last_event = (last_offset, self.states[last_model].head_hash)
            self.events_written += len(written)
        return len(fresh)

    def _decide_record(self, changed: dict[str, ModelState], record: ConsumerRecord,
                       outcomes: list[tuple[str, str]]):
        name = (record.key or b"").decode("utf-8", "replace")
        try:
            check_model_name(name)
        except InvalidName:
            # It cannot even name a model: park it, keep going.
            log.warning("command at %s/%s has no valid model key", record.partition, record.offset)
            yield DEAD_LETTERS_TOPIC, record.key or b"", record.value or b"", []
            outcomes.append(("dead_letter", ""))
            return
        position = CommandPosition(partition=record.partition, offset=record.offset)
        state = changed.get(name) or self.states.get(name) or ModelState(name=name)
        # The decision joins the trace the registrar's write began (if any), and
        # its events carry it on to the projector.
        with tracing.span("promoter decide", tracing.context_of(record.headers), model=name):
            events = self._decide(state, name, record, position)
            headers = tracing.kafka_headers()
        outcomes.append(outcome_of(events))
        for event in events:
            state = evolve(state, event, self.window)
            if event.actor.token_id is not None:
                self.spent_token_ids.add(event.actor.token_id)
            yield EVENTS_TOPIC, name.encode(), encode(sign_event(event, self.signing_key)), headers
        changed[name] = state

    def _decide(self, state: ModelState, name: str, record: ConsumerRecord, position: CommandPosition) -> list[Event]:
        try:
            command = decode_command(record.value or b"")
            if command.model != name:
                raise ValueError(f"record key {name!r} names another model than the command ({command.model!r})")
        except ValueError as error:  # pydantic's ValidationError included
            record_id = uuid5(NAMESPACE_URL, f"{COMMANDS_TOPIC}/{record.partition}/{record.offset}")
            return reject_malformed(state, record_id, _record_time(record), str(error), position)
        if self.authenticator is not None and command.command_id not in state.decided:
            refused = self.authenticator.authenticate(command, command_token(record.headers), _token_time(record))
            if refused is not None:
                return reject_unauthenticated(state, command, refused.message, refused.proven, position)
        return decide(state, command, position, self.default_policy.in_force)


def outcome_of(events: list[Event]) -> tuple[str, str]:
    """(outcome, reason) of one decision, for the decisions metric: a refusal
    with its reason code, an acceptance, or nothing new (a command decided before)."""
    if not events:
        return "repeat", ""
    last = events[-1].payload
    return ("rejected", last.reason) if isinstance(last, CommandRejected) else ("accepted", "")


def _record_time(record: ConsumerRecord) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, timezone.utc)


def _token_time(record: ConsumerRecord) -> datetime:
    """When to judge a command's token: when the broker appended the command
    (the commands topic stamps LogAppendTime), so a backlog does not expire
    tokens and a publisher cannot backdate one. A record stamped by its
    producer proves no time: then it is now."""
    return _record_time(record) if record.timestamp_type == LOG_APPEND_TIME else datetime.now(timezone.utc)
