"""A log read aside (audit verify's reader thread) hands over what the reader
read, in order, raises what the reading raised, and stops reading when its
caller stops."""

import threading

import pytest

from modelog_platform.adapters import read_aside
from modelog_platform.settings import EngineEndpoints


class BrokerGone(Exception):
    pass


def reading(lists: int, then: Exception | None = None, read: list[int] | None = None):
    """A stand-in for log_reader.partition_runs: `lists` lists, then `then` raised."""
    async def partition_runs(endpoints, topic, ranges, size, progress):
        for n in range(lists):
            if read is not None:
                read.append(n)
            yield [n] * size
        if then is not None:
            raise then
    return partition_runs


def runs(monkeypatch, runs_read, **kwargs) -> list:
    monkeypatch.setattr(read_aside, "partition_runs", runs_read)
    return read_aside.partition_runs_read_aside(EngineEndpoints(), "a-topic", {0: (0, 10)}, 2, **kwargs)


def test_every_list_is_handed_over_in_order(monkeypatch):
    assert list(runs(monkeypatch, reading(10))) == [[n, n] for n in range(10)]


def test_an_error_of_the_reading_is_raised_after_the_lists_read_before_it(monkeypatch):
    handed = []
    with pytest.raises(BrokerGone):
        for run in runs(monkeypatch, reading(3, then=BrokerGone())):
            handed.append(run)
    assert handed == [[0, 0], [1, 1], [2, 2]]


def test_a_caller_that_stops_stops_the_reading(monkeypatch):
    read: list[int] = []
    for _ in runs(monkeypatch, reading(1000, read=read)):
        break
    # The thread has ended, having read no more than the lists it could hand over.
    assert not [t for t in threading.enumerate() if t.name == "reading a-topic"]
    assert len(read) <= read_aside.WAITING + 3
