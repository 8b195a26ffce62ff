"""One projection instance is inside a batch's transaction when a second one
joins its consumer group. The rebalance waits for that batch to commit, so the
partitions that move start from checkpoints that include it: no instance is
fenced or fails, and every event is applied exactly once.

Two `Projection`s in this process, on the real broker and database; their
apply step records each (partition, offset) in a table of the test's own,
inside the batch's transaction, and the first one's can be held open."""

import asyncio
import logging
from collections import Counter
from uuid import uuid4

import pytest

from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.adapters.postgres import create_pool
from modelog_platform.adapters.projection import Projection
from modelog_platform.log_signing import LogTrustSettings, trusted_keys
from modelog_platform.settings import EVENTS_TOPIC
from tests.fault.read_side import burst, publish, wait_for_all_outcomes, wait_until_caught_up

pytestmark = pytest.mark.engines

HELD_OPEN_S = 8  # without waiting for the batch, the newcomer is assigned in a second or two


class Watched(Projection):
    """Tells when the group has asked it to give its partitions up."""

    def __init__(self, *args):
        super().__init__(*args)
        self.revoking = asyncio.Event()

    async def on_partitions_revoked(self, revoked) -> None:
        self.revoking.set()
        await super().on_partitions_revoked(revoked)


async def split(first: Projection, second: Projection, partitions: int) -> None:
    """Until each holds some partitions and the two every one between them, once."""
    while not (first.partitions and second.partitions
               and sorted(first.partitions + second.partitions) == list(range(partitions))):
        await asyncio.sleep(0.1)


async def test_a_rebalance_waits_for_the_batch_in_flight(stack, engines, caplog):
    commands = burst(uuid4().hex[:6], models=6, versions=4)  # events in the log, whatever ran before
    await publish(engines, commands)
    await wait_for_all_outcomes(stack, commands)
    records = await read_committed(engines, EVENTS_TOPIC)
    after_last = {}
    for record in records:
        after_last[record.partition] = record.offset + 1

    name, table = f"handover-{uuid4().hex[:6]}", f"applied_{uuid4().hex[:8]}"
    pools = [await create_pool(engines.postgres()) for _ in range(2)]
    await pools[0].execute(f'CREATE TABLE {table} (partition int, "offset" bigint)')
    gate, held = asyncio.Event(), asyncio.Event()

    def applying(at_gate: bool):
        async def apply(conn, batch):
            if at_gate and not gate.is_set():
                held.set()
                await gate.wait()
            await conn.executemany(f"INSERT INTO {table} VALUES ($1, $2)",
                                   [(event.partition, event.offset) for event in batch])
        return apply

    async def refuse(conn, refused, partition, offset):
        # Forgeries other tests appended to the shared log: handled (not
        # applied) exactly once too, so they count as handled here.
        await conn.execute(f"INSERT INTO {table} VALUES ($1, $2)", partition, offset)

    trusted = trusted_keys(LogTrustSettings())
    first = Watched(name, engines, pools[0], applying(at_gate=True), trusted, refuse)
    second = Projection(name, engines, pools[1], applying(at_gate=False), trusted, refuse)
    tasks = [asyncio.create_task(first.run())]
    try:
        await asyncio.wait_for(held.wait(), 60)  # the first is inside a batch's transaction
        tasks.append(asyncio.create_task(second.run()))
        await asyncio.wait_for(first.revoking.wait(), 60)
        # The rebalance cannot finish while that batch is open: the second gets nothing yet.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(second.assigned.wait(), HELD_OPEN_S)
        gate.set()
        await asyncio.wait_for(split(first, second, engines.topic_partitions), 60)

        await wait_until_caught_up(engines, name, after_last)
        assert [t for t in tasks if t.done()] == [], "a projection instance stopped"
        fenced = [r.message for r in caplog.records if r.name == "modelog.projection" and r.levelno >= logging.WARNING
                  and "seeking to the stored offset" in r.message]
        assert fenced == []
        applied = Counter((r["partition"], r["offset"]) for r in await pools[0].fetch(f"SELECT * FROM {table}"))
        assert {at: n for at, n in applied.items() if n > 1} == {}, "applied twice"
        assert set(applied) == {(r.partition, r.offset) for r in records}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pools[0].execute(f"DROP TABLE {table}")
        await pools[0].execute("DELETE FROM projection_checkpoints WHERE projection = $1", name)
        for pool in pools:
            await pool.close()
