"""Replay the event log (modelog.events) from offset 0 into a fresh schema.

The read models are a pure function of the log: a rebuild must give the same
rows as the live projection, which is how tests (and operators) prove it.
"""

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from modelog.adapters.log_reader import committed_records, log_bounds
from modelog.adapters.postgres import migrate
from modelog.codec import decode_event
from modelog.settings import EVENTS_TOPIC, EngineEndpoints
from projector.fold import ReadModelRows

MIGRATIONS = Path(__file__).parent / "migrations"
READ_MODELS = {  # table -> the columns that order its rows
    "models": "name", "model_versions": "model, version", "aliases": "model, alias",
    "pending_transitions": "request_id", "stage_history": "model, seq",
    "command_outcomes": "command_id",
}


def dsn_in_schema(dsn: str, schema: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"


async def fresh_schema(postgres_dsn: str, schema: str) -> str:
    """Create `schema` with the read-model tables, empty; returns a DSN that uses it."""
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    dsn = dsn_in_schema(postgres_dsn, schema)
    await migrate(dsn, "projector", MIGRATIONS)
    return dsn


class IncompleteLog(Exception):
    """The log's first events were deleted (retention, or records deleted by
    hand): its replay is not the registry's history. modelog.events is made
    with retention.ms=-1 so that this never happens."""


@dataclass(frozen=True)
class Replayed:
    """What a rebuild replayed: how many events, and per partition the offset
    after them (where a live projection of the rebuilt schema resumes)."""

    events: int
    next_offsets: dict[int, int]


async def rebuild(endpoints: EngineEndpoints, schema: str,
                  progress: Callable[[int, int], None] = lambda done, total: None,
                  topic: str = EVENTS_TOPIC) -> Replayed:
    """Project every event committed in `topic` now into a new `schema`: read
    them all, fold them in memory, then create the schema and copy the rows in
    at once. Refuses a log that lost its first events (IncompleteLog)."""
    firsts, ends = await log_bounds(endpoints, topic)
    if gone := {partition: first for partition, first in firsts.items() if first}:
        raise IncompleteLog(f"{topic} no longer holds its first events (partition: first offset left "
                            f"{gone}), so a replay would leave them out of the read models")
    rows, replayed = ReadModelRows(), 0
    with cycle_collection_paused():
        async for record in committed_records(endpoints, topic, {p: (0, end) for p, end in ends.items()},
                                              progress):
            rows.apply(decode_event(record.value))
            replayed += 1
    conn = await asyncpg.connect(await fresh_schema(endpoints.postgres_dsn, schema))
    try:
        await rows.copy_to(conn)
    finally:
        await conn.close()
    return Replayed(replayed, ends)


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """The fold makes millions of objects that live on, and no cycles: Python's
    cycle collector would scan them again and again for nothing (15-20% of a
    replay's CPU). Reference counting still frees what is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def table_rows(dsn: str, table: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {READ_MODELS[table]}")]
    finally:
        await conn.close()
