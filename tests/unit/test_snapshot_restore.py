"""Restoring a partition from a snapshot plus the log's tail gives the state a
fold of the whole log gives, for random histories cut anywhere; and bytes that
are not a whole, signed snapshot of today's shape are refused (hypothesis)."""

import base64
import dataclasses
import gzip
import hashlib
import json
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain import ModelState, decide, evolve
from modelog_contract.domain.commands import SetTag
from modelog_contract.domain.events import CommandPosition, Event
from modelog_contract.domain.idempotency import IdempotencyWindow
from modelog_contract.signing import TrustedKey, TrustedKeys
from modelog_platform.engines.seaweedfs import SNAPSHOTS_PREFIX as GRANTED
from promoter.restore import Restored
from promoter.snapshot_store import covered_offset, snapshot_key
from promoter.snapshots import (
    FORMAT,
    SNAPSHOT_SIGNATURE_CONTEXT,
    STATE_SCHEMA,
    Cut,
    SerialisedStates,
    SnapshotRefused,
    decode,
    encode,
)
from tests.unit.builders import command, create, register

PARTITION = 3
MODELS = ["fraud-detector", "churn", "ranker", "pricing"]
KEY = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([TrustedKey(KEY.public_key())])
T0 = datetime(2026, 11, 2, 9, 14, tzinfo=timezone.utc)

commands = st.lists(
    st.one_of(
        st.builds(lambda m, n: register(model=m, n=n), st.sampled_from(MODELS), st.integers(1, 50)),
        st.builds(lambda m: create(model=m), st.sampled_from(MODELS)),
        st.builds(lambda m, k, v: command(SetTag, model=m, key=k, value=v),
                  st.sampled_from(MODELS), st.sampled_from(["team", "tier"]), st.text(max_size=5)),
    ),
    min_size=1, max_size=40,
)


def history(sequence, gaps: list[int]) -> list[tuple[int, Event]]:
    """The events the commands yield, at the offsets a partition would hold
    them (a transaction marker, or an aborted record, leaves a gap)."""
    states: dict[str, ModelState] = {}
    logged, offset = [], 0
    for number, cmd in enumerate(sequence):
        state = states.get(cmd.model) or ModelState(name=cmd.model)
        for event in decide(state, cmd, CommandPosition(partition=PARTITION, offset=number)):
            state = evolve(state, event)
            logged.append((offset, event))
            offset += 1
        states[cmd.model] = state
        offset += 1 + (gaps[number] if number < len(gaps) else 0)  # the commit marker, and maybe more
    return logged


def fold(events: list[tuple[int, Event]], into: Restored | None = None) -> Restored:
    into = into or Restored(PARTITION)
    for offset, event in events:
        assert into.fold(event, offset, T0) is None
    return into


def cut_of(restored: Restored, spent=()) -> Cut:
    assert restored.last_event is not None
    return Cut(partition=PARTITION, events_offset=restored.last_event[0] + 1, command_offset=restored.next_command,
               last_event=restored.last_event, states=restored.states.copy(), head_offsets=dict(restored.head_offsets),
               spent_tokens=tuple(spent), written_at=T0)


@settings(max_examples=150, deadline=None)
@given(commands, st.lists(st.integers(0, 3), max_size=40), st.data())
def test_a_snapshot_at_any_cut_plus_the_tail_is_the_whole_fold(sequence, gaps, data):
    events = history(sequence, gaps)
    whole = fold(events)
    at = data.draw(st.integers(1, len(events)), label="cut after event")
    cut = cut_of(fold(events[:at]))
    restored = Restored.of(snapshot_key(PARTITION, cut.events_offset), decode(encode(cut, KEY), TRUSTED), [])
    fold(events[at:], restored)
    touched = {e.model for _, e in events[at:]}
    # Only the models the tail touched were read back; the rest are still the snapshot's JSON.
    assert set(restored.states.stored) == set(cut.states) - touched
    assert restored.states == whole.states
    assert restored.head_offsets == whole.head_offsets
    assert restored.last_event == whole.last_event
    assert restored.next_command == whole.next_command
    # Models the tail touched were proven by it; the rest wait for a head check.
    assert set(restored.unverified) == set(cut.states) - touched


@settings(max_examples=60, deadline=None)
@given(commands, st.data())
def test_a_tail_that_does_not_continue_a_snapshot_head_is_refused(sequence, data):
    events = history(sequence, [])
    if len(events) < 2:
        return
    at = data.draw(st.integers(1, len(events) - 1))
    # A snapshot one event short of what it claims to cover: the tail then
    # repeats or skips a model's seq.
    claimed = fold(events[:at])
    restored = Restored.of("s", cut_of(claimed), [])
    skipped = events[at - 1][1]
    later = next(((o, e) for o, e in events[at:] if e.model == skipped.model), None)
    if later is None:
        return
    problem = restored.fold(later[1].model_copy(update={"seq": later[1].seq + 1}), later[0], T0)
    assert problem is not None and "does not chain from its head" in problem


def test_the_cut_round_trips_with_its_tokens_and_positions():
    events = history([register(model=m, n=i) for i, m in enumerate(MODELS * 3)], [1, 0, 2])
    restored = fold(events)
    spent = [("token-1", uuid4(), T0 + timedelta(hours=1))]
    cut = cut_of(restored, spent)
    back = decode(encode(cut, KEY), TRUSTED)
    assert back == cut
    assert covered_offset(snapshot_key(PARTITION, cut.events_offset)) == cut.events_offset


def test_only_models_that_moved_are_serialised_again():
    events = history([register(model=m, n=i) for i, m in enumerate(MODELS)], [])
    restored = fold(events)
    cache = SerialisedStates()
    encode(cut_of(restored), KEY, cache)
    before = dict(cache.states)
    assert cache.idle == set()  # nothing was serialised before
    [event] = decide(restored.states[MODELS[0]], register(model=MODELS[0], n=9))
    assert restored.last_event is not None
    assert restored.fold(event, restored.last_event[0] + 2, T0) is None
    encode(cut_of(restored), KEY, cache)
    changed = {name for name in cache.states if cache.states[name] is not before.get(name)}
    assert changed == {MODELS[0]}
    assert cache.idle == set(MODELS[1:])


def test_models_idle_for_a_snapshot_interval_go_back_to_json_and_read_back_the_same():
    events = history([register(model=m, n=i) for i, m in enumerate(MODELS * 2)], [])
    restored, cache = fold(events), SerialisedStates()
    encode(cut_of(restored), KEY, cache)
    cut = cut_of(restored)
    encode(cut, KEY, cache)
    assert cache.idle == set(MODELS)
    values = dict(restored.states)
    # A decision lands while the snapshot is written: that model keeps its newer state.
    [event] = decide(restored.states[MODELS[0]], register(model=MODELS[0], n=9))
    assert restored.last_event is not None and restored.fold(event, restored.last_event[0] + 2, T0) is None
    kept = restored.states.keep_as_json({m: cache.states[m] for m in cache.idle}, cut.states.decoded)
    assert kept == len(MODELS) - 1
    assert set(restored.states.stored) == set(MODELS[1:]) and set(restored.states.decoded) == {MODELS[0]}
    assert {m: restored.states[m] for m in MODELS[1:]} == {m: values[m] for m in MODELS[1:]}
    assert restored.states[MODELS[0]].seq == values[MODELS[0]].seq + 1


def test_a_model_no_decision_touched_is_written_again_as_the_json_it_was_read_from():
    events = history([register(model=m, n=i) for i, m in enumerate(MODELS * 2)], [])
    first = encode(cut_of(fold(events)), KEY)
    restored = Restored.of("s", decode(first, TRUSTED), [])
    [event] = decide(restored.states[MODELS[0]], register(model=MODELS[0], n=9))
    assert restored.last_event is not None and restored.fold(event, restored.last_event[0] + 2, T0) is None
    assert set(restored.states.stored) == set(MODELS[1:])
    lines = set(gzip.decompress(first).split(b"\n")[2:])
    again = gzip.decompress(encode(cut_of(restored), KEY)).split(b"\n")[2:]
    assert {line for line in again if line.split(b"\t")[1] != MODELS[0].encode()} <= lines
    assert decode(encode(cut_of(restored), KEY), TRUSTED).states == restored.states


def test_a_tail_event_of_a_model_whose_stored_state_does_not_read_back_refuses_the_snapshot():
    """Signed bytes, so only a promoter bug could write such a state: the
    restore still never folds onto it."""
    events = history([register(model=m, n=i) for i, m in enumerate(MODELS * 2)], [])
    at = len(events) - 1
    cut = decode(encode(cut_of(fold(events[:at])), KEY), TRUSTED)
    victim = events[at][1].model
    line = cut.states.stored[victim]
    cut.states.stored[victim] = line._replace(json=line.json.replace(b'"seq":', b'"seq":"x","was":', 1))
    problem = Restored.of("s", cut, []).fold(events[at][1], events[at][0], T0)
    assert problem is not None and victim in problem and "does not read back" in problem


def snapshot_bytes() -> bytes:
    events = history([register(model=m, n=i) for i, m in enumerate(MODELS)], [])
    return encode(cut_of(fold(events)), KEY)


def rewritten(mutate, mutate_lines=lambda lines: None) -> bytes:
    """A snapshot whose body `mutate` (its metadata) and `mutate_lines` (its
    model lines) changed, re-signed by the promoter's key (so only the check
    under test can refuse it)."""
    header, body = gzip.decompress(snapshot_bytes()).split(b"\n", 1)
    lines = body.split(b"\n")
    meta = json.loads(lines[0])
    mutate(meta)
    mutate_lines(lines)
    body = b"\n".join([json.dumps(meta).encode(), *lines[1:]])
    digest = hashlib.sha256(body).hexdigest()
    signed = json.loads(header) | {"sha256": digest, "signature": base64.b64encode(
        KEY.sign(SNAPSHOT_SIGNATURE_CONTEXT + digest.encode())).decode()}
    return gzip.compress(json.dumps(signed).encode() + b"\n" + body)


@pytest.mark.parametrize("damage, why", [
    (lambda b: b[: len(b) // 2], "gzip"),
    (lambda b: b"not gzip at all", "gzip"),
    (lambda b: gzip.compress(gzip.decompress(b).replace(b'"models"', b'"modelz"')), "sha256"),
    (lambda b: gzip.compress(gzip.decompress(b)[:-10]), "sha256"),
])
def test_damaged_bytes_are_refused(damage, why):
    with pytest.raises(SnapshotRefused, match=why):
        decode(damage(snapshot_bytes()), TRUSTED)


def test_a_snapshot_signed_by_another_key_is_refused():
    other = TrustedKeys([TrustedKey(Ed25519PrivateKey.generate().public_key())])
    with pytest.raises(SnapshotRefused, match="does not trust"):
        decode(snapshot_bytes(), other)


def test_bytes_signed_with_a_trusted_key_id_but_another_key_are_refused():
    header, body = gzip.decompress(snapshot_bytes()).split(b"\n", 1)
    forged = json.loads(header) | {"signature": json.loads(header)["signature"][::-1]}
    with pytest.raises(SnapshotRefused, match="signature"):
        decode(gzip.compress(json.dumps(forged).encode() + b"\n" + body), TRUSTED)


@pytest.mark.parametrize("change, why", [
    (lambda meta: meta.update(state_schema="model-state/1"), "schema"),
    (lambda meta: meta.update(format=FORMAT + 1), "format"),
    (lambda meta: meta.update(window={"commands": 5, "seconds": 1.0}), "window"),
    (lambda meta: meta.update(models=meta["models"] + 1), "model lines"),
])
def test_a_snapshot_of_another_shape_is_refused_even_when_signed(change, why):
    with pytest.raises(SnapshotRefused, match=why):
        decode(rewritten(change), TRUSTED)
    assert STATE_SCHEMA  # named, whether by the contract or by the shape's digest


@pytest.mark.parametrize("damage", [
    lambda line: line.rsplit(b"\t", 1)[0].replace(b"\t", b" ", 1),  # four fields, not five
    lambda line: b"x" + line,  # a head offset that is not a number
    lambda line: line.replace(b"\t", b"\tx", 3),  # a seq that is not a number
    lambda line: line.replace(b"\t", b"\t\xff", 1),  # a model name that is not UTF-8
], ids=["fields", "offset", "seq", "name"])
def test_a_model_line_of_another_shape_is_refused_even_when_signed(damage):
    def damage_one(lines: list[bytes]) -> None:
        lines[2] = damage(lines[2])
    with pytest.raises(SnapshotRefused, match="unreadable body"):
        decode(rewritten(lambda meta: None, damage_one), TRUSTED)


def test_two_lines_of_one_model_are_refused_even_when_signed():
    def twice(lines: list[bytes]) -> None:
        lines[2] = lines[1]
    with pytest.raises(SnapshotRefused, match="name 3 models"):
        decode(rewritten(lambda meta: None, twice), TRUSTED)


def test_names_order_by_covered_position():
    keys = [snapshot_key(1, offset) for offset in (9, 10_000, 123)]
    assert sorted(keys) == [snapshot_key(1, o) for o in (9, 123, 10_000)]
    assert all(key.startswith(GRANTED) for key in keys)  # where the promoter's S3 identity may write


def test_a_snapshot_keeps_the_window_it_was_folded_with():
    """A promoter configured with another idempotency window does not use a
    snapshot folded under this one: its states remember other command ids."""
    narrow = IdempotencyWindow(commands=2, seconds=60)
    events = history([register(model=MODELS[0], n=i) for i in range(1, 5)], [])
    cut = dataclasses.replace(cut_of(fold(events, Restored(PARTITION, window=narrow))), window=narrow)
    back = decode(encode(cut, KEY), TRUSTED, narrow)
    assert back.window == narrow
    assert len(back.states[MODELS[0]].decided) == 2
    with pytest.raises(SnapshotRefused, match="window"):
        decode(encode(cut, KEY), TRUSTED)  # this promoter keeps the default window


def test_a_key_retired_after_a_snapshot_was_written_still_proves_it():
    """After a key rotation the snapshots signed before it stay usable (as the
    events signed before it do); one written after the key's retirement is refused."""
    events = history([register(model=m, n=i) for i, m in enumerate(MODELS)], [])
    before, after = cut_of(fold(events)), dataclasses.replace(cut_of(fold(events)), written_at=T0 + timedelta(hours=2))
    rotated = TrustedKeys([TrustedKey(KEY.public_key(), retired_after=T0 + timedelta(hours=1))])
    assert decode(encode(before, KEY), rotated).written_at == T0
    with pytest.raises(SnapshotRefused, match="retired after"):
        decode(encode(after, KEY), rotated)
