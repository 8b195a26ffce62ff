"""The sentinel's book written and read back (decision 0015): a book folded up
to any record, written, read and folded on with the rest of the log holds
what a fold of the whole log holds, whatever a record of the log was
tampered with; and every way the bytes can be wrong, or the book not the
log's, is refused, never folded on from."""

import asyncio
import hashlib
import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelog_contract.codec import encode as encode_event
from modelog_contract.domain.commands import RequestTransition, SetPolicy, SetTrafficSplit
from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM, Policy
from modelog_contract.domain.splits import Route
from modelog_contract.signing import sign_event
from modelog_platform.settings import EngineEndpoints
from sentinel.book import Book
from sentinel.book_snapshot import Position, SnapshotRefused, decode, encode
from sentinel.follower import BookBroken, Follower
from tests.unit.builders import ALICE, OPS, Scenario, command, register
from tests.unit.test_replay_proofs import KINDS, TRUSTED, WRITER, tampered

ADMIN = ALICE.model_copy(update={"roles": ("admin",)})
NOW = datetime(2026, 12, 4, 12, tzinfo=timezone.utc)


def serving_log(models=("fraud-detector", "churn"), versions=3) -> list[bytes]:
    """Real signed events of models with versions in Production, a canary
    each, and the default policy set: everything the book keeps."""
    scenarios = {m: Scenario(model=m) for m in models}
    policy = Scenario(model=DEFAULT_POLICY_STREAM)
    values: list[bytes] = []

    def decided(scenario: Scenario, cmd) -> None:
        nonlocal values
        values += [encode_event(sign_event(event, WRITER)) for event in scenario.when(cmd)]
    decided(policy, command(SetPolicy, actor=ADMIN, model=DEFAULT_POLICY_STREAM, policy=Policy()))
    for n in range(1, versions + 1):
        for model, scenario in scenarios.items():
            decided(scenario, register(model=model, n=n))
            if n == 1:  # no approvals: each request to Production is decided at once
                decided(scenario, command(SetPolicy, actor=ADMIN, model=model, policy=Policy(approvals_required={})))
            for stage in ("Staging", "Production"):
                decided(scenario, command(RequestTransition, actor=OPS, model=model, version=n, to_stage=stage))
    for model, scenario in scenarios.items():
        decided(scenario, register(model=model, n=versions + 1))
        decided(scenario, command(RequestTransition, actor=OPS, model=model, version=versions + 1, to_stage="Staging"))
        decided(scenario, command(SetTrafficSplit, actor=OPS, model=model,
                                  routes=(Route(version=versions, weight=90), Route(version=versions + 1, weight=10))))
    decided(policy, command(SetPolicy, actor=ADMIN, model=DEFAULT_POLICY_STREAM, policy=Policy()))
    return values


LOG = serving_log()


def records(values: list[bytes], start: int = 0) -> list[SimpleNamespace]:
    return [SimpleNamespace(value=value, partition=0, offset=start + i) for i, value in enumerate(values)]


def fold(follower: Follower, values: list[bytes], start: int = 0) -> Follower:
    asyncio.run(follower._apply(records(values[start:], start)))  # type: ignore[arg-type]
    return follower


def whole(values: list[bytes]) -> Follower:
    return fold(Follower(EngineEndpoints(), TRUSTED, Book()), values)


def snapshot_of(follower: Follower) -> bytes:
    return encode(follower.book, Position(dict(follower.next_offsets), dict(follower.last_events)), NOW)


def went_on(data: bytes, values: list[bytes]) -> Follower:
    """A new sentinel's follower going on from the snapshot, as Follower.run
    does: the whole log folded instead if the book proves not the log's."""
    book, position = decode(data)
    follower = Follower(EngineEndpoints(), TRUSTED, Book())
    follower.go_on_from(book, position)
    try:
        return fold(follower, values, position.next_offsets.get(0, 0))
    except BookBroken:
        return whole(values)


def tampered_or_none(kind: str, at: int) -> list[bytes] | None:
    """The log with record `at` tampered with; None where the forgery has no
    field to change (tampered() forges a description, which some events lack)."""
    try:
        return tampered(LOG, kind, at)
    except ValidationError:
        return None


def contents(book: Book) -> dict:
    names = sorted({*book.states, *book.resting})
    return {"states": {name: book.state(name) for name in names}, "productions": book.productions,
            "since": book.since, "default_policy": book.default_policy, "policy_head": book.policy_head,
            "events": book.events}


def test_the_log_exercises_everything_the_book_keeps():
    book = whole(LOG).book
    assert book.productions and all(len(versions) == 3 for versions in book.productions.values())
    assert all(book.serving(model).canaries for model in book.productions)
    assert book.policy_head[0] == 2


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from([None, *KINDS]), at=st.integers(0, len(LOG) - 1), cut=st.integers(0, len(LOG)))
def test_a_book_written_anywhere_and_folded_on_holds_what_the_whole_fold_holds(kind, at, cut):
    values = LOG if kind is None else tampered_or_none(kind, at)
    assume(values is not None)
    written = fold(Follower(EngineEndpoints(), TRUSTED, Book()), values[:cut])
    reference = whole(values)
    assert contents(went_on(snapshot_of(written), values).book) == contents(reference.book)


@pytest.mark.parametrize("cut", [0, 1, len(LOG) // 2, len(LOG) - 1, len(LOG)])
def test_an_untouched_log_goes_on_from_the_book_without_folding_it_again(cut):
    written = fold(Follower(EngineEndpoints(), TRUSTED, Book()), LOG[:cut])
    book, position = decode(snapshot_of(written))
    follower = Follower(EngineEndpoints(), TRUSTED, Book())
    follower.go_on_from(book, position)
    fold(follower, LOG, position.next_offsets.get(0, 0))  # raises BookBroken if it would have folded again
    assert contents(follower.book) == contents(whole(LOG).book)
    assert follower.started_from.startswith("its book")


DATA = snapshot_of(fold(Follower(EngineEndpoints(), TRUSTED, Book()), LOG[:len(LOG) // 2]))


@settings(max_examples=300, deadline=None)
@given(at=st.integers(0, len(DATA) - 1), bits=st.integers(1, 255))
def test_any_byte_changed_is_refused(at, bits):
    changed = bytearray(DATA)
    changed[at] ^= bits
    with pytest.raises(SnapshotRefused):
        decode(bytes(changed))


@settings(max_examples=100, deadline=None)
@given(length=st.integers(0, len(DATA) - 1))
def test_a_snapshot_cut_short_is_refused(length):
    with pytest.raises(SnapshotRefused):
        decode(DATA[:length])


def resealed(data: bytes, header_change=lambda header: None, line_change=lambda lines: None) -> bytes:
    """The snapshot changed, its sha256 made right again: only the check under test can refuse it."""
    header_line, body = data.split(b"\n", 1)
    lines = body.split(b"\n")
    line_change(lines)
    body = b"\n".join(lines)
    header = json.loads(header_line) | {"sha256": hashlib.sha256(body).hexdigest()}
    header_change(header)
    return json.dumps(header).encode() + b"\n" + body


def test_a_book_of_another_state_schema_or_format_is_refused():
    with pytest.raises(SnapshotRefused, match="states of schema model-state/0"):
        decode(resealed(DATA, header_change=lambda header: header.update(state_schema="model-state/0")))
    with pytest.raises(SnapshotRefused, match="format 0"):
        decode(resealed(DATA, header_change=lambda header: header.update(format=0)))


def test_a_model_line_missing_is_refused():
    with pytest.raises(SnapshotRefused, match="its metadata says"):
        decode(resealed(DATA, line_change=lambda lines: lines.pop()))


def test_a_head_the_log_does_not_follow_is_caught_by_the_models_first_event_since():
    def other_head(lines: list[bytes]) -> None:
        name, productions, since, state = lines[1].split(b"\t", 3)
        fields = json.loads(state)
        fields["head_hash"] = "0" * 64
        lines[1] = b"\t".join((name, productions, since, json.dumps(fields, separators=(",", ":")).encode()))
    book, position = decode(resealed(DATA, line_change=other_head))
    follower = Follower(EngineEndpoints(), TRUSTED, Book())
    follower.go_on_from(book, position)
    with pytest.raises(BookBroken, match="does not follow the book's head"):
        fold(follower, LOG, position.next_offsets[0])


def test_a_book_ahead_of_the_log_is_caught():
    """Written from a log later cut back: the tail's events repeat seqs the book has."""
    written = fold(Follower(EngineEndpoints(), TRUSTED, Book()), LOG)
    book, _ = decode(snapshot_of(written))
    follower = Follower(EngineEndpoints(), TRUSTED, Book())
    follower.go_on_from(book, Position({0: len(LOG) // 2}, {}))
    with pytest.raises(BookBroken):
        fold(follower, LOG, len(LOG) // 2)
