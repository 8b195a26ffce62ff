"""Blue/green: put a replayed schema's read models in place of the live ones.

A replay (rebuild.py) stops at the log's end as it was when it began, while
the live projector goes on. The switch first catches the replay up with the
live checkpoints, with everything running. Then, in one transaction, it holds
the live projector's batches back, catches up the last few events, and moves
the tables: the live ones into a retired schema (kept, to look back at or to
switch back by hand), the replayed ones into their place. Readers wait only
for the moves; the projector then carries on from its checkpoints, into the
new tables. Several projector instances are held back alike: they all take
the same lock.
"""

import asyncio
import logging
import re
from dataclasses import dataclass

import asyncpg

from modelog_contract.proven import Refused
from modelog_platform.adapters.log_reader import committed_records
from modelog_platform.adapters.postgres import connect
from modelog_platform.adapters.projection import hold_batches_back
from modelog_platform.log_signing import trusted_keys
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints, LogTrustSettings, PostgresLogin
from projector.read_models import apply_event
from projector.rebuild import READ_MODELS, projector_login, proven

log = logging.getLogger("modelog.projections.switch")
RETIRED = re.compile(r"retired_rebuild_\d{14}")  # retired_ + the replay's schema name
PROJECTION = "projector"
CATCH_UP_ROUNDS = 3  # unpaused rounds, so the paused one has only a short tail to apply
# Below PostgreSQL's deadlock_timeout (1 s): if a reader's query and the table
# moves ever wait on each other, the switch is the one that gives way, retrying.
MOVE_LOCK_TIMEOUT = "500ms"
MOVE_ATTEMPTS = 10


@dataclass(frozen=True)
class Switched:
    retired_schema: str  # where the previous read models now are
    caught_up: int  # events applied after the replay, to reach the live projection


async def switch_over(endpoints: EngineEndpoints, schema: str, replayed_to: dict[int, int]) -> Switched:
    """Catch `schema` (replayed up to `replayed_to`, per partition) up with the
    live projection and swap its read-model tables in; `schema` is dropped."""
    positions = dict(replayed_to)
    login = projector_login(endpoints)
    live = await connect(login)
    replica = await connect(login.in_schema(schema))
    try:
        caught_up = 0
        for _ in range(CATCH_UP_ROUNDS):
            caught_up += await catch_up(endpoints, replica, positions, await live_checkpoints(live))
        live_schema = await live.fetchval("SELECT current_schema()")
        retired = f"retired_{schema}"
        await live.execute(f'CREATE SCHEMA "{retired}"')
        for attempt in range(1, MOVE_ATTEMPTS + 1):
            try:
                async with live.transaction():
                    await hold_batches_back(live, PROJECTION)
                    caught_up += await catch_up(endpoints, replica, positions, await live_checkpoints(live))
                    await live.execute(f"SET LOCAL lock_timeout = '{MOVE_LOCK_TIMEOUT}'")
                    for table in READ_MODELS:
                        await live.execute(f'ALTER TABLE "{live_schema}".{table} SET SCHEMA "{retired}"')
                        await live.execute(f'ALTER TABLE "{schema}".{table} SET SCHEMA "{live_schema}"')
                    await set_checkpoints(live, positions)
                break
            except asyncpg.LockNotAvailableError:
                log.info("readers held a read model table; moving again (attempt %d)", attempt)
                await asyncio.sleep(0.05 * attempt)
        else:
            raise RuntimeError(f"could not move the read models in {MOVE_ATTEMPTS} attempts; "
                               f"the live ones are untouched and the replay is in {schema}")
        await live.execute(f'DROP SCHEMA "{schema}" CASCADE')  # what is left: its empty webhook tables
        return Switched(retired, caught_up)
    finally:
        await replica.close()
        await live.close()


async def live_checkpoints(conn: asyncpg.Connection) -> dict[int, int]:
    rows = await conn.fetch("SELECT partition, next_offset FROM projection_checkpoints"
                            " WHERE projection = $1 AND topic = $2", PROJECTION, EVENTS_TOPIC)
    return {row["partition"]: row["next_offset"] for row in rows}


async def set_checkpoints(conn: asyncpg.Connection, positions: dict[int, int]) -> None:
    """Where the moved-in tables are. Equal to the live checkpoints unless the
    replay had read further than a lagging projector: then the projector's next
    batch finds its checkpoint moved, is fenced, and resumes from here."""
    await conn.executemany(
        "INSERT INTO projection_checkpoints VALUES ($1, $2, $3, $4) ON CONFLICT (projection, topic, partition)"
        " DO UPDATE SET next_offset = EXCLUDED.next_offset",
        [(PROJECTION, EVENTS_TOPIC, partition, offset) for partition, offset in positions.items()])


async def catch_up(endpoints: EngineEndpoints, replica: asyncpg.Connection, positions: dict[int, int],
                   targets: dict[int, int]) -> int:
    """Apply to `replica` the events between its positions and the live ones,
    as the live projector did (one transaction, unproven events left out: the
    live projector quarantined them); moves `positions` on."""
    trusted = trusted_keys(LogTrustSettings())
    ranges = {p: (start, targets[p]) for p, start in positions.items() if targets.get(p, 0) > start}
    applied = 0
    async with replica.transaction():
        async for record in committed_records(endpoints, EVENTS_TOPIC, ranges):
            event = proven(record, EVENTS_TOPIC, trusted)
            if not isinstance(event, Refused):
                await apply_event(replica, event, record.partition, record.offset)
                applied += 1
    for partition, (_, stop) in ranges.items():
        positions[partition] = stop
    return applied


async def retired_schemas(login: PostgresLogin) -> list[tuple[str, int]]:
    """The schemas switches retired, oldest first, with how many models each holds."""
    conn = await connect(login)
    try:
        names = [r["nspname"] for r in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'retired\\_rebuild\\_%' ORDER BY nspname")]
        return [(name, await conn.fetchval(f'SELECT count(*) FROM "{name}".models'))
                for name in names if RETIRED.fullmatch(name)]
    finally:
        await conn.close()


async def drop_retired(login: PostgresLogin, schema: str) -> None:
    """Drop a schema a switch retired; any other name is refused (ValueError)."""
    if not RETIRED.fullmatch(schema):
        raise ValueError(f"{schema!r} is not a schema a switch retired (retired_rebuild_<time>)")
    conn = await connect(login)
    try:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()
