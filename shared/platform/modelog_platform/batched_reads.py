"""Reads by key, sent together: the callers waiting at one moment share one read.

Read-your-writes lookups (the projector's serving answers, the registrar's
MLflow cache) must each see every commit visible when they arrived, so a
caller joins the next read, never one already out: the read it gets started
after it asked. While a read is out, new callers gather for the one after it.
Under load one read serves many callers; alone, a caller waits for one.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchedReads(Generic[K, V]):
    def __init__(self, read_many: Callable[[list[K]], Awaitable[dict[K, V]]], max_keys: int | None = None):
        """`read_many(keys)`: the values of those keys that have one; `max_keys`:
        at most this many keys a read (the rest wait for the next)."""
        self.read_many = read_many
        self.max_keys = max_keys
        self._waiting: dict[K, list[asyncio.Future]] = {}
        self._reading: asyncio.Task | None = None

    async def read(self, key: K) -> V | None:
        """`key`'s value, read after this call began; None if it has none. A
        failed read fails every caller that shared it, as its own would."""
        found = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(found)
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_while_waited_for())
        return await found

    async def _read_while_waited_for(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[:self.max_keys]
                batch = {key: self._waiting.pop(key) for key in keys}
                failure: Exception | None = None
                values: dict[K, V] = {}
                try:
                    values = await self.read_many(keys)
                except Exception as error:
                    failure = error
                for key, waiting in batch.items():
                    for future in waiting:
                        if future.done():  # its caller went away
                            continue
                        if failure is not None:
                            future.set_exception(failure)
                        else:
                            future.set_result(values.get(key))
        finally:
            self._reading = None
