"""Answers to serving lookups ("which version is in Production / @champion?"),
cached per (model, stage or alias) and tagged with the model's seq (and the
identity of the tables read, which a blue/green switch changes).

Every event moves its model's `seq` in the same transaction as the rows it
changes, so an answer read at seq N stays right for as long as the model is at
N. Each lookup therefore reads the model's seq from PostgreSQL after the
request arrived, and reuses the cached answer only if it was read at that seq.

Why a read per lookup and not LISTEN/NOTIFY invalidation: a notification
reaches each projector instance some milliseconds after the commit, and
nothing orders it before the caller's next request. A client that saw its
command's outcome (`/v1/commands/{id}`, or the registrar's answer) could then
ask another instance, or this one a moment too early, and be served the
answer from before its write. A seq read sent after the request arrived sees
every commit that was visible before it: read-your-writes, on any number of
instances. The lookups waiting at one moment share one read (`ModelSeqs`,
through BatchedReads), so under load it costs one round trip per batch, not
per request.

Authorization is not cached here: the routes check the caller on every request.
"""

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.batched_reads import BatchedReads
from projector import queries

# A download URL is signed for URL_VALID_FOR and served from the cache for at
# most URL_REUSE_S of that, so a serving system always gets one with at least
# ten minutes left to fetch the artifact.
URL_VALID_FOR = timedelta(minutes=15)
URL_REUSE_S = 5 * 60.0


class ModelSeqs:
    """Models' seqs, read for the lookups waiting now in one query (BatchedReads).

    The reads go one at a time over a connection of their own, not a pool's:
    one read is out at a time. A failed read closes it; the next read
    connects again."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]]):
        self.connect = connect
        self._conn: asyncpg.Connection | None = None
        self._reads: BatchedReads[str, tuple[int, int]] = BatchedReads(self._read_many)

    async def read(self, name: str) -> tuple[int, int] | None:
        """The seq of model `name` and the oid of the read-model table it is in;
        None if there is no such model."""
        return await self._reads.read(name)

    async def _read_many(self, names: list[str]) -> dict[str, tuple[int, int]]:
        try:
            self._conn = self._conn or await self.connect()
            return await queries.model_seqs(self._conn, names)
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # no goodbye: it may be what just failed


@dataclass(frozen=True)
class Answer:
    seq: int  # the model's seq the answer was read at: its ETag
    tables: int  # the oid of the models table it was read from: new after a blue/green switch
    body: bytes | None  # the JSON answer; None: no such alias
    signed_at: float  # when its download URLs were signed (monotonic clock)


class ServingAnswers:
    """The latest answer of each (model, stage|alias) lookup; bounded, least
    recently used first out."""

    def __init__(self, artifacts: ArtifactStore, connect: Callable[[], Awaitable[asyncpg.Connection]],
                 max_entries: int = 10_000, clock=time.monotonic):
        self.artifacts, self.max_entries, self.clock = artifacts, max_entries, clock
        self.seqs = ModelSeqs(connect)
        self._answers: OrderedDict[tuple[str, str, str], Answer] = OrderedDict()

    async def stage(self, pool: asyncpg.Pool, name: str, stage: str) -> Answer | None:
        """The versions in `stage` of model `name`; None if there is no such model."""
        async def read(conn: asyncpg.Connection, seq: int) -> dict:
            versions = await queries.versions_in_stage(conn, name, stage)
            return {"model": name, "stage": stage, "seq": seq, "versions": [self.serving_view(v) for v in versions]}
        return await self._answer(pool, (name, "stage", stage), read)

    async def alias(self, pool: asyncpg.Pool, name: str, alias: str) -> Answer | None:
        """The version @alias of model `name` points at (an answer without body
        if none); None if there is no such model."""
        async def read(conn: asyncpg.Connection, seq: int) -> dict | None:
            version = await queries.version_for_alias(conn, name, alias)
            return version and {"model": name, "alias": alias, "seq": seq, **self.serving_view(version)}
        return await self._answer(pool, (name, "alias", alias), read)

    async def traffic_split(self, pool: asyncpg.Pool, name: str) -> Answer | None:
        """The model's traffic split, each routed and shadow version with what a
        serving system needs to load it; with no split set, the Production
        version at 100 (no routes if it has none). None if there is no such model."""
        async def read(conn: asyncpg.Connection, seq: int) -> dict:
            split = json.loads(await conn.fetchval("SELECT traffic_split FROM models WHERE name = $1", name))
            if not split:
                newest = (await queries.versions_in_stage(conn, name, "Production"))[:1]  # newest first
                return {"model": name, "seq": seq, "split": False,
                        "production_version": newest[0]["version"] if newest else None,
                        "routes": [{"weight": 100, **self.serving_view(v)} for v in newest], "shadows": []}

            async def view(number: int) -> dict:
                version = await queries.get_version(conn, name, number)
                assert version is not None, (name, number)  # the fold keeps a split to live versions
                return self.serving_view(version)
            return {"model": name, "seq": seq, "split": True, "production_version": split["production_version"],
                    "routes": [{"weight": r["weight"], **await view(r["version"])} for r in split["routes"]],
                    "shadows": [await view(number) for number in split["shadows"]]}
        return await self._answer(pool, (name, "split", ""), read)

    async def _answer(self, pool: asyncpg.Pool, key: tuple[str, str, str], read) -> Answer | None:
        at = await self.seqs.read(key[0])
        if at is None:
            return None
        answer = self._answers.get(key)
        if answer is not None and (answer.seq, answer.tables) == at and self.clock() - answer.signed_at < URL_REUSE_S:
            self._answers.move_to_end(key)
            return answer
        # One snapshot, so the rows are exactly those of the seq they are tagged with.
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            seq, tables = (await queries.model_seqs(conn, [key[0]]))[key[0]]
            body = await read(conn, seq)
        answer = Answer(seq, tables, None if body is None else json_bytes(body), self.clock())
        self._answers[key] = answer
        self._answers.move_to_end(key)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)
        return answer

    def serving_view(self, version: dict) -> dict:
        """What a serving system needs to load a version, with a download URL."""
        return {"version": version["version"], "stage": version["stage"], "aliases": version["aliases"],
                "run_id": version["run_id"], "metrics": version["metrics"],
                "artifact": {"uri": version["artifact_uri"], "sha256": version["artifact_sha256"],
                             "size": version["artifact_size"],
                             "download_url": self.artifacts.download_url(version["artifact_sha256"],
                                                                         valid_for=URL_VALID_FOR)}}


def http_answer(answer: Answer, if_none_match: str | None) -> tuple[int, dict[str, str], bytes | None]:
    """Status, headers and body of a lookup's answer. The model's seq is the
    ETag: a poller that sends it back gets 304 until the model changes."""
    etag = f'"{answer.seq}"'
    if if_none_match == etag:
        return 304, {"ETag": etag}, b""
    return 200, {"ETag": etag, "Cache-Control": "no-cache", "Content-Type": "application/json"}, answer.body


def json_bytes(body: dict) -> bytes:
    """As FastAPI's JSONResponse renders it."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()
