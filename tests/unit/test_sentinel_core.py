"""The sentinel's working part without Faust: a batch becomes one table write
per key, malformed signals and signals of unknown models are counted and
dropped, a window is judged once it is closed by the clock, a version is
judged only on windows that began after it took its role, and a breach whose
request met a model that had moved on is judged again once the book has moved
too: asked again if it still holds, never if the decision came."""

import json
from datetime import timedelta
from typing import Any

import pytest

from modelog_contract.domain.commands import RequestTransition, SetPolicy, SetTrafficSplit
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Actor
from sentinel.book import Book
from sentinel.core import Sentinel, one_per_change
from tests.unit.builders import MODEL, OPS, T0, Scenario, command, register

ADMIN = Actor(subject="ada", roles=("admin",))
RULE = {"kind": "error_rate", "name": "errors", "max_error_percent": 5, "window_s": 10, "min_requests": 20}
SIZE = 10
POLICY = Policy(approvals_required={}, rollback_rules=[RULE])


def canary_history() -> Scenario:
    """v1 in Production, v2 a 10% canary since T0 + 1 minute."""
    move = lambda n, stage: command(RequestTransition, version=n, to_stage=stage)  # noqa: E731
    return Scenario().given(register(n=1), register(n=2), command(SetPolicy, actor=ADMIN, policy=POLICY),
                            move(1, "Staging"), move(1, "Production"), move(2, "Staging"),
                            command(SetTrafficSplit, actor=OPS, at=T0 + timedelta(minutes=1),
                                    routes=[{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]))


def folded(history: Scenario) -> Book:
    book = Book()
    for event in history.events:
        book.apply(event)
    return book


def book_with_a_canary() -> Book:
    return folded(canary_history())


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
    [judged] = s.breaches(start)
    assert (judged.model, judged.breach.action, judged.breach.version) == (MODEL, "drop_canary", 2)
    assert s.closable(start + SIZE + 1) == []
    s.answered(judged, "decided")
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


ANOTHER_CHANGE = command(SetPolicy, actor=ADMIN, at=T0 + timedelta(minutes=3), policy=POLICY)
THE_DECISION = command(SetTrafficSplit, actor=OPS, at=T0 + timedelta(minutes=3), routes=[{"version": 1, "weight": 100}])


def answered_then_moved(answer, cmd) -> tuple[Sentinel, Any]:
    """A failing canary's breach judged, answered `answer`, then `cmd` decided on the model."""
    history = canary_history()
    book = folded(history)
    s, _, _ = sentinel(book)
    at = T0 + timedelta(minutes=2)
    s.absorb([(0, raw(2, at, 30, 6)), (0, raw(1, at, 300, 0))], now=at.timestamp())
    [judged] = s.breaches(int(at.timestamp()) - int(at.timestamp()) % SIZE)
    assert judged.seq == history.state.seq
    s.answered(judged, answer)
    assert s.judged_again() == []  # the book has not moved: nothing new to judge on
    for event in history.when(cmd):
        book.apply(event)
    return s, judged


@pytest.mark.parametrize("answer", ["stale", "pending"])
def test_a_breach_whose_outcome_was_not_seen_is_asked_again_once_the_book_moves_if_it_still_holds(answer):
    s, judged = answered_then_moved(answer, ANOTHER_CHANGE)
    [again] = s.judged_again()
    assert (again.model, again.breach.version, again.start, again.seq) == (
        MODEL, 2, judged.start, judged.seq + 1)
    assert s.judged_again() == []  # judged again once, then as its answer says


@pytest.mark.parametrize("answer", ["stale", "pending"])
def test_a_breach_whose_decision_came_is_not_asked_again(answer):
    s, _ = answered_then_moved(answer, THE_DECISION)
    assert s.judged_again() == []  # v2 no longer serves


@pytest.mark.parametrize("answer", ["decided", "refused", "retry"])
def test_a_breach_whose_outcome_was_seen_or_is_to_be_retried_is_not_watched(answer):
    s, _ = answered_then_moved(answer, ANOTHER_CHANGE)
    assert s.judged_again() == [] and s.watched == {}


def test_windows_closing_together_with_the_same_breach_ask_for_it_once():
    s, _, _ = sentinel(book_with_a_canary())
    first = T0 + timedelta(minutes=2)
    for at in (first, first + timedelta(seconds=SIZE)):
        s.absorb([(0, raw(2, at, 30, 6)), (0, raw(1, at, 300, 0))], now=at.timestamp())
    starts = s.closable(first.timestamp() + 3 * SIZE)
    due = [j for start in starts for j in s.breaches(start)]
    assert len(starts) == len(due) == 2
    assert one_per_change(due) == due[:1]
