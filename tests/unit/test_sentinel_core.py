"""The sentinel's working part without Faust: a batch becomes one table write
per key, malformed signals and signals of unknown models are counted and
dropped, a window is judged once it is closed by the clock, and a version is
judged only on windows that began after it took its role."""

import json
from datetime import timedelta

from modelog_contract.domain.commands import RequestTransition, SetPolicy, SetTrafficSplit
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Actor
from sentinel.book import Book
from sentinel.core import Sentinel
from tests.unit.builders import MODEL, OPS, T0, Scenario, command, register

ADMIN = Actor(subject="ada", roles=("admin",))
RULE = {"kind": "error_rate", "name": "errors", "max_error_percent": 5, "window_s": 10, "min_requests": 20}
SIZE = 10


def book_with_a_canary() -> Book:
    """v1 in Production, v2 a 10% canary since T0 + 1 minute."""
    move = lambda n, stage: command(RequestTransition, version=n, to_stage=stage)  # noqa: E731
    s = Scenario().given(register(n=1), register(n=2),
                         command(SetPolicy, actor=ADMIN, policy=Policy(approvals_required={}, rollback_rules=[RULE])),
                         move(1, "Staging"), move(1, "Production"), move(2, "Staging"),
                         command(SetTrafficSplit, actor=OPS, at=T0 + timedelta(minutes=1),
                                 routes=[{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]))
    book = Book()
    for event in s.events:
        book.apply(event)
    return book


def raw(version: int, at, requests: int, errors: int, model: str = MODEL) -> bytes:
    return json.dumps({"model": model, "version": version, "instance": "i-1", "time": at.isoformat(),
                       "requests": requests, "errors": errors}).encode()


def sentinel(book: Book) -> tuple[Sentinel, dict, list]:
    table: dict = {}
    written: list = []
    return Sentinel(table, lambda p, k, v: written.append((p, k, v)), book, SIZE, 1.0, 1000), table, written


def test_a_batch_writes_each_key_once_and_drops_what_it_cannot_use():
    s, table, written = sentinel(book_with_a_canary())
    at = T0 + timedelta(minutes=2)
    s.absorb([(0, raw(2, at, 5, 1)), (0, raw(2, at, 5, 0)), (0, raw(1, at, 90, 0)), (0, b"{not json"),
              (0, raw(2, at, 1, 3)), (0, raw(1, at, 9, 9, model="nobody"))], now=at.timestamp())
    assert sorted(k for _, k, _ in written) == sorted(table) and len(written) == 2
    assert s.counts["malformed"] == 2 and s.counts["unknown_model"] == 1 and s.counts["signals"] == 3
    assert sorted((v["requests"], v["errors"]) for v in table.values()) == [(10, 1), (90, 0)]


def test_a_window_is_judged_once_closed_and_a_breach_once_acted_on_is_not_asked_again():
    book = book_with_a_canary()
    s, _, _ = sentinel(book)
    at = T0 + timedelta(minutes=2)
    s.absorb([(0, raw(2, at, 30, 6)), (0, raw(1, at, 300, 0))], now=at.timestamp())
    start = int(at.timestamp()) - int(at.timestamp()) % SIZE
    assert s.closable(start + SIZE) == []  # not yet: the grace has not passed
    assert s.closable(start + SIZE + 1) == [start]
    [(model, breach)] = s.breaches(start)
    assert (model, breach.action, breach.version) == (MODEL, "drop_canary", 2)
    assert s.closable(start + SIZE + 1) == []
    s.settled(model, breach)
    later = at + timedelta(seconds=SIZE)
    s.absorb([(0, raw(2, later, 30, 6))], now=later.timestamp())
    assert s.breaches(start + SIZE) == []  # the model has not moved since: asked already


def test_windows_before_a_version_took_its_role_are_not_its_evidence():
    s, _, _ = sentinel(book_with_a_canary())
    before = T0 + timedelta(seconds=30)  # v2 failing while still only in Staging
    s.absorb([(0, raw(2, before, 30, 30))], now=before.timestamp())
    start = int(before.timestamp()) - int(before.timestamp()) % SIZE
    assert s.breaches(start) == []


def test_old_windows_are_pruned_with_a_tombstone_in_the_changelog():
    s, table, written = sentinel(book_with_a_canary())
    at = T0 + timedelta(minutes=2)
    s.absorb([(3, raw(1, at, 10, 0))], now=at.timestamp())
    s.prune(at.timestamp() + 1000 * SIZE)
    assert table == {} and written[-1][0] == 3 and written[-1][2] is None
