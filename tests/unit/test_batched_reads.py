"""BatchedReads: callers waiting at one moment share one read, a caller that
arrives while a read is out gets the next one, a read takes at most max_keys
keys, and a failed read fails only the callers that shared it."""

import asyncio

import pytest

from modelog_platform.batched_reads import BatchedReads


class Store:
    """Values by key; each read is recorded, and held until `release` is set."""

    def __init__(self, values: dict[str, int]):
        self.values, self.reads, self.release = dict(values), [], asyncio.Event()
        self.release.set()
        self.fail_next = False

    async def read_many(self, keys: list[str]) -> dict[str, int]:
        self.reads.append(list(keys))
        snapshot = {k: self.values[k] for k in keys if k in self.values}  # taken as the read is sent
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the read failed")
        return snapshot


async def test_callers_waiting_together_share_one_read_and_a_missing_key_reads_none():
    store = Store({"a": 1, "b": 2})
    reads = BatchedReads(store.read_many)
    assert await asyncio.gather(reads.read("a"), reads.read("b"), reads.read("a"), reads.read("c")) == [1, 2, 1, None]
    assert store.reads == [["a", "b", "c"]]


async def test_a_caller_arriving_while_a_read_is_out_gets_the_next_read_and_sees_a_later_value():
    store = Store({"a": 1})
    reads = BatchedReads(store.read_many)
    store.release.clear()
    early = asyncio.create_task(reads.read("a"))
    while not store.reads:
        await asyncio.sleep(0)
    store.values["a"] = 2  # written after the first read was sent
    late = asyncio.create_task(reads.read("a"))
    store.release.set()
    assert (await early, await late) == (1, 2)
    assert store.reads == [["a"], ["a"]]


async def test_a_read_takes_at_most_max_keys_and_the_rest_wait_for_the_next():
    store = Store({str(i): i for i in range(5)})
    reads = BatchedReads(store.read_many, max_keys=2)
    assert await asyncio.gather(*(reads.read(str(i)) for i in range(5))) == [0, 1, 2, 3, 4]
    assert store.reads == [["0", "1"], ["2", "3"], ["4"]]


async def test_a_failed_read_fails_its_callers_only_and_the_next_read_answers():
    store = Store({"a": 1})
    reads = BatchedReads(store.read_many)
    store.fail_next = True
    with pytest.raises(ConnectionError):
        await reads.read("a")
    assert await reads.read("a") == 1


async def test_a_caller_that_went_away_leaves_the_others_answered():
    store = Store({"a": 1})
    reads = BatchedReads(store.read_many)
    store.release.clear()
    gone, staying = asyncio.create_task(reads.read("a")), asyncio.create_task(reads.read("a"))
    while not store.reads:
        await asyncio.sleep(0)
    gone.cancel()
    store.release.set()
    assert await staying == 1
    assert gone.cancelled()
