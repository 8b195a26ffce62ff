"""The live projection: a batch of events folded (fold.py) into the rows they
may change, read from PostgreSQL in one round trip, and what changed written
back, all inside the batch's transaction, with the events' webhook deliveries
queued beside them and one notification for the outcomes the batch completes.
An event not proven to come from the log's writer is quarantined instead
(the projection adapter proves each record before it gets here)."""

import copy
import json
from collections.abc import Sequence

import asyncpg

from modelog_contract.domain.events import Event
from modelog_contract.proven import Refused
from modelog_platform.adapters.projection import Positioned
from projector.fold import COLUMNS, JSONB, KEYS, SCOPE, ReadModelRows, Row, records, scope_of
from projector.outcome_wakeups import announce
from projector.webhooks import HOOKS_IN_SCOPE, Hook, hooks_in_scope
from projector.webhooks import enqueue as enqueue_webhooks

# One round trip: each table's rows in scope as an array of anonymous records
# (a record's type stays the same when a switch puts new tables in place, so
# the prepared statement stays valid), then the webhooks that may want the
# batch's events (a switch leaves the webhooks table where it is).
LOAD = "SELECT " + ", ".join([*(f"(SELECT array_agg(ROW({', '.join(COLUMNS[table])})) FROM {table} WHERE {where})"
                                for table, where in SCOPE.items()), HOOKS_IN_SCOPE])
UPSERT = {table: f"INSERT INTO {table} ({', '.join(columns)})"
                 f" VALUES ({', '.join(f'${n}' for n in range(1, len(columns) + 1))})"
                 f" ON CONFLICT ({', '.join(KEYS[table])}) DO UPDATE SET "
                 + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in KEYS[table])
          for table, columns in COLUMNS.items()}
DELETE = {table: f"DELETE FROM {table} WHERE "
                 + " AND ".join(f"{column} = ${n}" for n, column in enumerate(key, 1))
          for table, key in KEYS.items()}


async def apply_batch(conn: asyncpg.Connection, batch: list[Positioned]) -> None:
    """The projection adapter's `apply`: a partition's batch, in log order."""
    await apply_events(conn, [positioned.event for positioned in batch])


async def apply_event(conn: asyncpg.Connection, event: Event, partition: int, offset: int) -> None:
    """One event alone: a batch of one."""
    await apply_events(conn, [event])


async def apply_events(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Fold `events` (in log order) into the rows they may change and write back what changed.
    Folding the batch in memory gives what folding and writing back one event
    at a time gives: each event reads the rows its predecessors left."""
    rows, hooks = await in_scope(conn, events)
    before = copy.deepcopy(rows.keyed())  # apply changes rows in place
    for event in events:
        rows.apply(event)
    await write_changes(conn, before, rows.keyed())
    await enqueue_webhooks(conn, events, hooks)
    # Outcomes complete: wake their waiters once this commits.
    await announce(conn, [event.command_id for event in events if event.closes_decision])


async def in_scope(conn: asyncpg.Connection, events: Sequence[Event]) -> tuple[ReadModelRows, list[Hook]]:
    """The rows `events` may change, and the webhooks that may want them."""
    rows = ReadModelRows()
    *tables, hooks = await conn.fetchrow(LOAD, *scope_of(events))
    for table, in_table in zip(SCOPE, tables, strict=True):
        for record in in_table or ():  # array_agg of no rows is NULL
            rows.add(table, read_row(table, record))
    return rows, hooks_in_scope(hooks)


def read_row(table: str, record: asyncpg.Record) -> Row:
    row = dict(zip(COLUMNS[table], record, strict=True))
    for column in JSONB.intersection(row):
        row[column] = json.loads(row[column])
    return row


async def write_changes(conn: asyncpg.Connection, before: dict[str, dict[tuple, Row]],
                        after: dict[str, dict[tuple, Row]]) -> None:
    """Upsert the rows that are new or changed and delete the ones gone, table by
    table in COLUMNS order (models first: versions reference them)."""
    for table, columns in COLUMNS.items():
        old, new = before.get(table, {}), after[table]
        if gone := [key for key in old if key not in new]:
            await conn.executemany(DELETE[table], gone)
        if changed := [row for key, row in new.items() if old.get(key) != row]:
            await conn.executemany(UPSERT[table], records(changed, columns))


async def quarantine(conn: asyncpg.Connection, refused: Refused, partition: int, offset: int) -> None:
    """Keep an unproven event as evidence; it changes no read model and queues no webhook."""
    await conn.execute(
        "INSERT INTO quarantined_events (kafka_partition, kafka_offset, model, seq, event_id, problem, record)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        partition, offset, refused.model, refused.seq, refused.event_id, refused.problem,
        json.dumps(refused.fields))


async def quarantined(conn: asyncpg.Connection) -> dict:
    """How many events are quarantined, and the newest (for /readyz)."""
    count = await conn.fetchval("SELECT count(*) FROM quarantined_events")
    newest = await conn.fetchrow(
        "SELECT model, seq, event_id, problem, kafka_partition, kafka_offset, quarantined_at"
        " FROM quarantined_events ORDER BY quarantined_at DESC, kafka_offset DESC LIMIT 1")
    return {"quarantined": count, "newest": newest and {
        **dict(newest), "event_id": newest["event_id"] and str(newest["event_id"]),
        "quarantined_at": newest["quarantined_at"].isoformat()}}
