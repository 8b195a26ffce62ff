"""The projector's serving cache: a lookup's seq is read after it arrived
(lookups waiting together share a read, never one already sent), an answer is
reused only at the seq it was read at, and its download URLs are re-signed
long before they expire."""

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import pytest

from projector import serving
from projector.serving import ModelSeqs, ServingAnswers


class Database:
    """The rows the serving queries read, behind a pool of fake connections
    that count the seq reads and can hold them until released."""

    def __init__(self):
        self.seqs = {"fraud": 7}
        self.stage_rows: list[dict] = []
        self.seq_reads: list[list[str]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.fail: Exception | None = None

    @asynccontextmanager
    async def acquire(self):
        yield self

    def transaction(self, **_):
        return self.acquire()

    async def fetch(self, sql: str, *args):
        if "FROM models" in sql:
            self.seq_reads.append(list(args[0]))
            seqs = dict(self.seqs)  # the snapshot the read sees is taken when it is sent
            await self.hold.wait()
            if self.fail:
                raise self.fail
            return [(name, seqs[name]) for name in args[0] if name in seqs]
        return self.stage_rows

    async def fetchval(self, sql: str, name: str):
        return self.seqs.get(name)


class Artifacts:
    def __init__(self):
        self.signed = 0

    def download_url(self, sha256: str, valid_for) -> str:
        self.signed += 1
        return f"https://s3/{sha256}?signature={self.signed}"


def version_row(version: int, stage: str = "Production") -> dict:
    return {"version": version, "stage": stage, "aliases": [], "run_id": None,
            "artifact_uri": f"s3://bucket/{version}", "artifact_sha256": f"{version:064d}", "artifact_size": 1,
            "params": "{}", "tags": "{}", "metrics": "{}", "registered_at": datetime(2026, 11, 2, tzinfo=timezone.utc)}


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def database():
    return Database()


async def test_lookups_waiting_together_share_one_seq_read(database):
    seqs = ModelSeqs()
    assert await asyncio.gather(seqs.read(database, "fraud"), seqs.read(database, "fraud"),
                                seqs.read(database, "churn")) == [7, 7, None]
    assert database.seq_reads == [["fraud", "churn"]]


async def test_a_lookup_arriving_while_a_read_is_out_waits_for_the_next_read(database):
    seqs = ModelSeqs()
    database.hold.clear()
    early = asyncio.create_task(seqs.read(database, "fraud"))
    while not database.seq_reads:
        await asyncio.sleep(0)  # until the read is out, with the snapshot of seq 7
    database.seqs["fraud"] = 8  # a write commits; a client sees its outcome and asks
    late = asyncio.create_task(seqs.read(database, "fraud"))
    database.hold.set()
    assert (await early, await late) == (7, 8)
    assert database.seq_reads == [["fraud"], ["fraud"]]


async def test_a_failed_read_fails_its_lookups_and_the_next_lookup_reads_again(database):
    seqs = ModelSeqs()
    database.fail = ConnectionError("database gone")
    with pytest.raises(ConnectionError):
        await seqs.read(database, "fraud")
    database.fail = None
    assert await seqs.read(database, "fraud") == 7


async def test_an_answer_is_reused_only_at_the_seq_it_was_read_at(database):
    answers = ServingAnswers(Artifacts())
    database.stage_rows = [version_row(1)]
    first = await answers.stage(database, "fraud", "Production")
    assert await answers.stage(database, "fraud", "Production") is first
    database.seqs["fraud"], database.stage_rows = 8, [version_row(2)]
    moved = await answers.stage(database, "fraud", "Production")
    assert moved.seq == 8 and b'"version":2' in moved.body
    assert await answers.stage(database, "nobody", "Production") is None


async def test_download_urls_are_signed_again_before_they_near_expiry(database):
    artifacts, clock = Artifacts(), Clock()
    answers = ServingAnswers(artifacts, clock=clock)
    database.stage_rows = [version_row(1)]
    await answers.stage(database, "fraud", "Production")
    clock.now += serving.URL_REUSE_S - 1
    await answers.stage(database, "fraud", "Production")
    assert artifacts.signed == 1
    clock.now += 1
    again = await answers.stage(database, "fraud", "Production")
    assert artifacts.signed == 2 and b"signature=2" in again.body
    assert serving.URL_VALID_FOR.total_seconds() - serving.URL_REUSE_S >= 600


async def test_the_cache_holds_at_most_max_entries(database):
    answers = ServingAnswers(Artifacts(), max_entries=2)
    for stage in ("None", "Staging", "Production"):
        await answers.stage(database, "fraud", stage)
    assert len(answers._answers) == 2
