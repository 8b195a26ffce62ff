"""The projector's serving cache against PostgreSQL: a lookup's seq is read
after it arrived (lookups waiting together share a read, never one already
sent), an answer is reused only at the seq and tables it was read from, and
its download URLs are re-signed long before they expire."""

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from uuid import uuid4

import asyncpg
import pytest

from modelog_platform.adapters.postgres import connect, create_pool
from modelog_platform.adapters.s3 import ArtifactStore
from projector import serving
from projector.rebuild import fresh_schema
from projector.serving import ModelSeqs, ServingAnswers

pytestmark = pytest.mark.engines
NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)


class WatchedPool:
    """The real pool and connections, with each query that reads seqs counted
    and, while `hold` is clear, its answer held back after PostgreSQL gave it:
    the read is out with its snapshot taken, as a slow network would leave it."""

    def __init__(self, pool: asyncpg.Pool, dsn: str):
        self.pool, self.dsn, self.seq_reads, self.hold = pool, dsn, [], asyncio.Event()
        self.connections: list[asyncpg.Connection] = []
        self.hold.set()

    @asynccontextmanager
    async def acquire(self):
        async with self.pool.acquire() as conn:
            yield WatchedConnection(conn, self)

    async def connect(self) -> "WatchedConnection":
        self.connections.append(await connect(self.dsn))
        return WatchedConnection(self.connections[-1], self)


class WatchedConnection:
    def __init__(self, conn: asyncpg.Connection, watch: WatchedPool):
        self.conn, self.watch = conn, watch

    def __getattr__(self, name):
        return getattr(self.conn, name)

    async def fetch(self, sql: str, *args):
        rows = await self.conn.fetch(sql, *args)
        if "FROM models" in sql:
            self.watch.seq_reads.append(list(args[0]))
            await self.watch.hold.wait()
        return rows


class CountingStore(ArtifactStore):
    """The real store, counting the download URLs it signs."""

    signed = 0

    def download_url(self, sha256, valid_for=serving.URL_VALID_FOR) -> str:
        self.signed += 1
        return super().download_url(sha256, valid_for)


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
async def database(engines):
    schema = f"serving_{uuid4().hex[:8]}"
    dsn = await fresh_schema(engines.postgres(), schema)
    pool = await create_pool(dsn, 4)
    await pool.execute("INSERT INTO models (name, seq, head_hash, created_at, updated_at)"
                       " VALUES ('fraud', 7, 'h', $1, $1)", NOW)
    await add_version(pool, 1, "Production")
    watched = WatchedPool(pool, dsn)
    yield watched
    for conn in watched.connections:
        await conn.close()
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


async def add_version(conn, version: int, stage: str) -> None:
    await conn.execute(
        "INSERT INTO model_versions (model, version, stage, artifact_uri, artifact_sha256, artifact_size,"
        " registered_by, registered_at) VALUES ('fraud', $1, $2, 's3://b/k', $3, 1, 'alice', $4)",
        version, stage, f"{version:064x}", NOW)


async def commit_version(pool, version: int) -> None:
    """What a projected promotion commits: the rows and the model's seq together."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE model_versions SET stage = 'Archived' WHERE model = 'fraud'")
        await add_version(conn, version, "Production")
        await conn.execute("UPDATE models SET seq = seq + 1 WHERE name = 'fraud'")


async def test_lookups_waiting_together_share_one_seq_read(database):
    seqs = ModelSeqs(database.connect)
    fraud, again, nobody = await asyncio.gather(seqs.read("fraud"), seqs.read("fraud"),
                                                seqs.read("nobody"))
    assert fraud == again and fraud[0] == 7 and nobody is None
    assert database.seq_reads == [["fraud", "nobody"]]


async def test_a_lookup_arriving_while_a_read_is_out_waits_for_the_next_read(database):
    seqs = ModelSeqs(database.connect)
    database.hold.clear()
    early = asyncio.create_task(seqs.read("fraud"))
    while not database.seq_reads:
        await asyncio.sleep(0.001)  # until the read is out, having seen seq 7
    await commit_version(database.pool, 2)  # a write commits; a client sees its outcome and asks
    late = asyncio.create_task(seqs.read("fraud"))
    database.hold.set()
    assert ((await early)[0], (await late)[0]) == (7, 8)
    assert database.seq_reads == [["fraud"], ["fraud"]]


async def test_a_failed_read_fails_its_lookups_and_the_next_lookup_reads_on_a_new_connection(database):
    seqs = ModelSeqs(database.connect)
    await database.pool.execute("ALTER TABLE models RENAME TO models_away")
    with pytest.raises(asyncpg.UndefinedTableError):
        await seqs.read("fraud")
    await database.pool.execute("ALTER TABLE models_away RENAME TO models")
    assert (await seqs.read("fraud"))[0] == 7
    assert len(database.connections) == 2  # the failed read's connection was closed, another made


async def test_the_seq_reads_keep_their_connection(database):
    seqs = ModelSeqs(database.connect)
    for _ in range(3):
        assert (await seqs.read("fraud"))[0] == 7
    assert len(database.connections) == 1 and len(database.seq_reads) == 3


async def test_an_answer_is_reused_only_at_the_seq_it_was_read_at(database, engines):
    answers = ServingAnswers(CountingStore(engines), database.connect)
    first = await answers.stage(database, "fraud", "Production")
    assert await answers.stage(database, "fraud", "Production") is first
    await commit_version(database.pool, 2)
    moved = await answers.stage(database, "fraud", "Production")
    assert moved.seq == 8 and b'"version":2' in moved.body and b'"version":1' not in moved.body
    assert await answers.stage(database, "nobody", "Production") is None


async def test_after_a_switch_to_new_tables_at_the_same_seq_the_answer_is_read_again(database, engines):
    """`projections rebuild --switch` moves in tables with the same seqs and,
    where the old ones were damaged, other rows: a cached answer must not outlive them."""
    answers = ServingAnswers(CountingStore(engines), database.connect)
    damaged = await answers.stage(database, "fraud", "Production")
    async with database.pool.acquire() as conn, conn.transaction():
        for table in ("model_versions", "models"):
            await conn.execute(f"ALTER TABLE {table} RENAME TO retired_{table}")
        for table in ("models", "model_versions"):
            await conn.execute(f"CREATE TABLE {table} (LIKE retired_{table} INCLUDING ALL)")
            await conn.execute(f"INSERT INTO {table} SELECT * FROM retired_{table}")
        await conn.execute("UPDATE model_versions SET stage = 'Staging'")
    repaired = await answers.stage(database, "fraud", "Production")
    assert repaired.seq == damaged.seq == 7
    assert b'"version":1' in damaged.body and b'"version":1' not in repaired.body


async def test_download_urls_are_signed_again_before_they_near_expiry(database, engines):
    store, clock = CountingStore(engines), Clock()
    answers = ServingAnswers(store, database.connect, clock=clock)
    await answers.stage(database, "fraud", "Production")
    clock.now += serving.URL_REUSE_S - 1
    await answers.stage(database, "fraud", "Production")
    assert store.signed == 1
    clock.now += 1
    again = await answers.stage(database, "fraud", "Production")
    assert store.signed == 2 and b"X-Amz-Signature" in again.body
    assert serving.URL_VALID_FOR.total_seconds() - serving.URL_REUSE_S >= 600


async def test_the_cache_holds_at_most_max_entries(database, engines):
    answers = ServingAnswers(CountingStore(engines), database.connect, max_entries=2)
    for stage in ("None", "Staging", "Production"):
        await answers.stage(database, "fraud", stage)
    assert len(answers._answers) == 2
