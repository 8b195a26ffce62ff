"""Replay the event log (modelog.events) from offset 0 into a fresh schema.

The read models are a pure function of the log: a rebuild must give the same
rows as the live projection, which is how tests (and operators) prove it.
So it proves each record as the live projection does: an event the log's
writer did not sign is skipped, logged and reported, never folded.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import ConsumerRecord

from modelog_contract.domain.events import Event
from modelog_contract.proven import Refused, proven_event, proven_or_refused
from modelog_contract.replay_proofs import CHUNK, Provers, cycle_collection_paused, workers_for
from modelog_contract.signing import TrustedKeys
from modelog_platform.adapters.log_reader import log_bounds, partition_runs
from modelog_platform.adapters.postgres import PROJECTOR_ROLE, connect, migrate
from modelog_platform.log_signing import trusted_keys
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints, LogTrustSettings, PostgresLogin
from projector.fold import KEYS, ReadModelRows

log = logging.getLogger("modelog.projections.rebuild")

MIGRATIONS = Path(__file__).parent / "migrations"
READ_MODELS = {table: ", ".join(key) for table, key in KEYS.items()}  # table -> the columns that order its rows


def projector_login(endpoints: EngineEndpoints) -> PostgresLogin:
    """Whoever runs a rebuild or a switch (an operator, the admin beside a
    local stack), what it makes belongs to the projector's role, as the live
    read models do: the projector goes on writing into the tables it moves in."""
    return endpoints.postgres().acting_as(PROJECTOR_ROLE)


async def fresh_schema(login: PostgresLogin, schema: str) -> PostgresLogin:
    """Create `schema` with the read-model tables, empty; returns a login that
    uses it. The projector's role owns them, as it owns the live ones."""
    await run_in_one_transaction(login, [f'CREATE SCHEMA "{schema}"'])
    in_schema = login.in_schema(schema)
    try:
        await migrate(in_schema, "projector", MIGRATIONS)
    except BaseException:
        await drop_schema(login, schema)
        raise
    return in_schema


class IncompleteLog(Exception):
    """The log's first events were deleted (retention, or records deleted by
    hand): its replay is not the registry's history. modelog.events is made
    with retention.ms=-1 so that this never happens."""


class MalformedEvent(ValueError):
    """A record of the log is not a valid event: the replay stops before it
    writes anything (the live projector would have stopped at it too)."""


@dataclass(frozen=True)
class Skipped:
    """A record the replay left out: not proven to come from the log's writer."""

    partition: int
    offset: int
    refused: Refused

    def __str__(self) -> str:
        return self.refused.describe(self.partition, self.offset)


@dataclass(frozen=True)
class Replayed:
    """What a rebuild replayed: how many events, per partition the offset
    after them (where a live projection of the rebuilt schema resumes), and
    the records skipped as unproven (the live projection quarantined them)."""

    events: int
    next_offsets: dict[int, int]
    skipped: list[Skipped] = field(default_factory=list)


async def rebuild(endpoints: EngineEndpoints, schema: str,
                  progress: Callable[[int, int], None] = lambda done, total: None,
                  topic: str = EVENTS_TOPIC, trusted: TrustedKeys | None = None,
                  workers: int | None = None) -> Replayed:
    """Project every event committed in `topic` now into a new `schema`: read
    them all, fold them in memory, then create the schema and copy the rows in
    at once. Refuses a log that lost its first events (IncompleteLog) or
    holds a malformed one (MalformedEvent) before creating the schema; a
    replay that fails once it is created drops it. `trusted`: the log
    writer's keys (default: the environment's, as the projector reads them).
    `workers`: processes that prove the records (default: by the log's
    length, replay_proofs.workers_for); the rows are the same with any number."""
    trusted = trusted if trusted is not None else trusted_keys(LogTrustSettings())
    firsts, ends = await log_bounds(endpoints, topic)
    if gone := {partition: first for partition, first in firsts.items() if first}:
        raise IncompleteLog(f"{topic} no longer holds its first events (partition: first offset left "
                            f"{gone}), so a replay would leave them out of the read models")
    rows, replayed, skipped = ReadModelRows(), 0, []

    async def fold(chunk: list[ConsumerRecord], problems: "Future[list[str | None]]") -> None:
        nonlocal replayed
        proofs: list[str | None] = await asyncio.wrap_future(problems)
        for record, problem in zip(chunk, proofs, strict=True):
            event = decoded(record, topic, problem)
            if isinstance(event, Refused):
                skipped.append(Skipped(record.partition, record.offset, event))
                log.error("rebuild: event not proven to come from the log's writer, skipped: %s", skipped[-1])
                continue
            rows.apply(event)
            replayed += 1

    # Worker processes prove chunks of records (the most costly part) while
    # this one reads the next ones and decodes and folds the proven ones, in order.
    with cycle_collection_paused(), Provers(trusted, workers_for(sum(ends.values())) if workers is None else workers) as provers:
        pending: deque[tuple[list[ConsumerRecord], Future[list[str | None]]]] = deque()
        async for chunk in partition_runs(endpoints, topic, {p: (0, end) for p, end in ends.items()}, CHUNK,
                                          progress):
            pending.append((chunk, provers.submit([record.value for record in chunk])))
            if len(pending) > provers.depth:
                await fold(*pending.popleft())
        while pending:
            await fold(*pending.popleft())
        await copy_into_fresh_schema(projector_login(endpoints), schema, rows)
    return Replayed(replayed, ends, skipped)


async def copy_into_fresh_schema(login: PostgresLogin, schema: str, rows: ReadModelRows) -> None:
    """Create `schema` and copy `rows` into its bare tables, then make their keys
    and indexes; a failure drops the schema."""
    in_schema = await fresh_schema(login, schema)
    try:
        restore = await drop_keys_and_indexes(in_schema)
        conn = await connect(in_schema)
        try:
            await rows.copy_to(conn)
        finally:
            await conn.close()
        await run_in_one_transaction(in_schema, restore)
    except BaseException:
        await drop_schema(login, schema)
        raise


def proven(record, topic: str, trusted: TrustedKeys) -> Event | Refused:
    try:
        return proven_event(record.value, trusted)
    except ValueError as invalid:  # pydantic's ValidationError is one
        raise malformed(record, topic, invalid) from invalid


def decoded(record: ConsumerRecord, topic: str, problem: str | None) -> Event | Refused:
    """What `proven` answers, for a record whose proof found `problem`."""
    try:
        return proven_or_refused(record.value, problem)
    except ValueError as invalid:
        raise malformed(record, topic, invalid) from invalid


def malformed(record: ConsumerRecord, topic: str, invalid: ValueError) -> "MalformedEvent":
    return MalformedEvent(f"{topic} partition {record.partition} offset {record.offset} "
                          f"is not a valid event: {invalid}")


async def drop_keys_and_indexes(login: PostgresLogin) -> list[str]:
    """Drop the read-model tables' keys and indexes in `login`'s schema; returns
    the statements that make them again, as the migrations made them. A COPY
    into bare tables, then one build of each index and one check of each
    foreign key, is cheaper than checking and indexing row by row."""
    conn = await connect(login)
    try:
        tables = list(READ_MODELS)
        constraints = await conn.fetch(
            "SELECT c.conrelid::regclass::text AS table_name, c.conname, c.contype::text AS kind,"
            " pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
            " WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY($1)"
            " AND c.contype IN ('p', 'u', 'f') ORDER BY c.contype = 'f' DESC, c.conname", tables)
        indexes = await conn.fetch(
            "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition"
            " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY($1)"
            " AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            " ORDER BY name", tables)
        async with conn.transaction():
            for c in constraints:  # foreign keys first: they need the keys they reference
                await conn.execute(f'ALTER TABLE {c["table_name"]} DROP CONSTRAINT "{c["conname"]}"')
            for index in indexes:
                await conn.execute(f"DROP INDEX {index['name']}")
    finally:
        await conn.close()
    add = [f'ALTER TABLE {c["table_name"]} ADD CONSTRAINT "{c["conname"]}" {c["definition"]}' for c in constraints]
    foreign_keys = sum(c["kind"] == "f" for c in constraints)
    return add[foreign_keys:] + [index["definition"] for index in indexes] + add[:foreign_keys]


async def run_in_one_transaction(login: PostgresLogin, statements: list[str]) -> None:
    conn = await connect(login)
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


async def drop_schema(login: PostgresLogin, schema: str) -> None:
    await run_in_one_transaction(login, [f'DROP SCHEMA "{schema}" CASCADE'])


async def table_rows(login: PostgresLogin, table: str) -> list[tuple]:
    conn = await connect(login)
    try:
        return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {READ_MODELS[table]}")]
    finally:
        await conn.close()
