"""A projection batch's transaction (adapters/projection.batch_transaction):
opened with its batch lock in one query, committed whole when the batch
returns, rolled back whole when it raises, and the lock held until then."""

import asyncio
import contextlib

import pytest

from modelog_platform.adapters.postgres import connect
from modelog_platform.adapters.projection import BATCH_LOCK, Fenced, batch_transaction

pytestmark = pytest.mark.engines

HELD = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1"
        " AND objid = hashtext($2)::oid AND mode = 'ShareLock' AND granted")


async def batches(engines, projection: str, fail: bool) -> tuple[list[int], int, bool]:
    """Rows a batch left, the batch locks another session saw held during it,
    and whether the connection was left outside a transaction."""
    conn, other = await connect(engines.postgres()), await connect(engines.postgres())
    try:
        await conn.execute("CREATE TEMP TABLE applied (n int)")
        seen = 0
        with pytest.raises(Fenced) if fail else contextlib.nullcontext():
            async with batch_transaction(conn, projection):
                await conn.execute("INSERT INTO applied VALUES (1), (2)")
                seen = await other.fetchval(HELD, BATCH_LOCK, projection)
                if fail:
                    raise Fenced("another instance moved the checkpoint on")
        rows = [r["n"] for r in await conn.fetch("SELECT n FROM applied ORDER BY n")]
        return rows, seen, not conn.is_in_transaction()
    finally:
        await conn.close()
        await other.close()


def test_a_batch_that_returns_commits_whole_with_its_lock_held_until_then(engines):
    rows, held, left_clean = asyncio.run(batches(engines, "projector", fail=False))
    assert rows == [1, 2] and held == 1 and left_clean


def test_a_batch_that_raises_leaves_nothing_behind(engines):
    rows, held, left_clean = asyncio.run(batches(engines, "projector", fail=True))
    assert rows == [] and held == 1 and left_clean


def test_a_projection_name_is_quoted_not_run(engines):
    # Names come from code, yet the opening must hold whatever they are.
    rows, held, left_clean = asyncio.run(batches(engines, "it's; DROP TABLE applied; --", fail=False))
    assert rows == [1, 2] and held == 1 and left_clean
