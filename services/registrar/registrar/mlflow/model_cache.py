"""Models kept whole (the row and every version row) for MLflow's reads,
each tagged with the seq it was read at, and reused only while the model is
still at that seq (docs/decisions/0011-mlflow-reads-from-a-cache.md).

Why a seq check per request and not invalidation from the change feed: a
change reaches a listener some milliseconds after the projector commits it,
and nothing orders it before the caller's next request; a client that saw its
write's answer could be served the model from before the write. The seqs read
after a request arrives see every commit visible by then: read-your-writes,
with any number of registrar and projector instances.

The requests waiting at one moment share one seq read (`GET /v1/seqs`,
through BatchedReads, on the registrar's kept connections: seq_reads.py): under load,
one projector round trip per batch, not per request. A model whose seq moved
is read again whole (`GET /v1/models/{name}/with-versions`).
Authorization is not cached here: the caller of `get` checks the caller's
grants first; these reads go as the registrar itself.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from modelog_platform.batched_reads import BatchedReads
from registrar.mlflow.seq_reads import SeqReader
from registrar.projector_http import ProjectorHttp, authorization_of

MAX_MODELS = 10_000  # models kept, least recently used out first
MAX_NAMES_PER_READ = 1000  # the projector's limit on names in one /v1/seqs


@dataclass
class CachedModel:
    model: Mapping[str, Any]
    versions: list[Mapping[str, Any]]
    at: tuple[int, int]  # (seq, oid of the table it was read from)
    answers: dict[tuple, bytes] = field(default_factory=dict)  # encoded answers, by request


class ModelCache:
    def __init__(self, http: httpx.AsyncClient, max_models: int = MAX_MODELS):
        """`http`: the projector, asked as the registrar itself; the seq
        checks go to the same server with the same identity."""
        self.http, self.max_models = http, max_models
        self._models: OrderedDict[str, CachedModel] = OrderedDict()
        # Connections of its own, not the outcome waits' (outcomes.py): a write's
        # wait holds its connection for seconds, and a burst of writes filling
        # that pool would hold every MLflow read's seq check behind them.
        self.seq_reader = SeqReader(ProjectorHttp(http.base_url, authorization_of(http)))
        self._seqs: BatchedReads[str, tuple[int, int]] = BatchedReads(self.seq_reader.read, MAX_NAMES_PER_READ)
        self._whole: dict[str, asyncio.Task] = {}  # whole reads under way, by model

    async def get(self, name: str) -> CachedModel | None:
        """The model as it is now, from the cache when its seq has not moved;
        None if there is no such model."""
        at = await self._current(name)
        if at is None:
            return None
        cached = self._models.get(name)
        if cached is not None and cached.at == at:
            self._models.move_to_end(name)
            return cached
        # The requests that found the model moved share one whole read; one
        # begun before the model reached `at` may miss it, so reads again.
        reading = self._whole.get(name)
        if reading is None:
            reading = self._whole[name] = asyncio.create_task(self._read_whole(name))
            reading.add_done_callback(lambda done: self._whole.pop(name) if self._whole.get(name) is done else None)
        fresh = await asyncio.shield(reading)
        if fresh is not None and (fresh.at[0] < at[0] or fresh.at[1] != at[1]):
            return await self._read_whole(name)
        return fresh

    async def _read_whole(self, name: str) -> CachedModel | None:
        response = await self.http.get(f"/v1/models/{name}/with-versions")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body = response.json()
        fresh = CachedModel(body["model"], body["versions"], (body["seq"], body["table"]))
        cached = self._models.get(name)
        if cached is None or fresh.at[0] >= cached.at[0] or fresh.at[1] != cached.at[1]:
            self._models[name] = fresh  # a slower read of an older seq never replaces a newer one
            self._models.move_to_end(name)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
        return fresh

    async def _current(self, name: str) -> tuple[int, int] | None:
        """The model's (seq, table) read after this call began; None: no such model."""
        return await self._seqs.read(name)

    async def close(self) -> None:
        await self.seq_reader.close()
