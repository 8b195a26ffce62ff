"""A message on modelog.signals holds one signal or an array of them; in an
array, each element stands alone: a malformed one is dropped and counted, its
neighbours are kept."""

import json
from datetime import timedelta

from sentinel.messages import signals
from tests.unit.builders import MODEL, T0
from tests.unit.test_sentinel_core import book_with_a_canary, sentinel

GOOD = {"model": "fraud-detector", "version": 2, "instance": "i-1", "time": "2026-12-03T10:15:00Z",
        "requests": 3, "errors": 1, "metrics": {"latency_ms": 12.5}}


def test_a_message_of_one_signal_is_that_signal():
    parsed = signals(json.dumps(GOOD).encode())
    assert [(s.version, s.requests, s.errors) for s in parsed.signals] == [(2, 3, 1)] and not parsed.malformed


def test_an_array_is_every_signal_in_it_in_order():
    parsed = signals(json.dumps([GOOD, {**GOOD, "version": 1, "errors": 0}]).encode())
    assert [(s.version, s.errors) for s in parsed.signals] == [(2, 1), (1, 0)] and not parsed.malformed


def test_a_bad_element_is_dropped_alone_and_says_which_it_was():
    bad = {**GOOD, "errors": 9}  # more errors than requests
    parsed = signals(json.dumps([GOOD, bad, "not a signal", {**GOOD, "version": 1}]).encode())
    assert [s.version for s in parsed.signals] == [2, 1]
    assert [why.split(":")[0] for why in parsed.malformed] == ["element 1", "element 2"]


def test_what_is_not_json_or_not_a_signal_is_one_malformed_signal():
    for raw in (b"{not json", b"[{\"model\": ", b"", b"42"):
        parsed = signals(raw)
        assert not parsed.signals and len(parsed.malformed) == 1, raw


def test_an_array_is_summed_like_its_signals_sent_one_by_one():
    at = (T0 + timedelta(minutes=2)).isoformat()
    one = {"model": MODEL, "version": 2, "instance": "i-1", "time": at, "requests": 5, "errors": 1}
    batch = [one, {**one, "errors": 0}, {**one, "errors": 6}, {**one, "model": "nobody"}]
    in_one, table_one, _ = sentinel(book_with_a_canary())
    by_one, table_by_one, _ = sentinel(book_with_a_canary())
    now = (T0 + timedelta(minutes=2)).timestamp()
    in_one.absorb([(0, json.dumps(batch).encode())], now)
    by_one.absorb([(0, json.dumps(s).encode()) for s in batch], now)
    assert table_one == table_by_one and next(iter(table_one.values()))["requests"] == 10
    assert in_one.counts == by_one.counts and in_one.counts["malformed"] == in_one.counts["unknown_model"] == 1
