"""The hash chain: hash = sha256(prev_hash ‖ RFC 8785 canonical JSON of the event).

Canonical JSON makes the hash independent of key order and number formatting,
so any consumer in any language can recompute it.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
import rfc8785

GENESIS_HASH = "0" * 64
SAFE_INTEGER = 2**53 - 1


# Computed from the hashed bytes, so they cannot be part of them.
NOT_HASHED = frozenset({"hash", "signature"})


class StrictlyParsed(dict[str, Any]):
    """An event's fields read from JSON text by orjson and found to hold no
    integer beyond +/-(2**53 - 1) and only floats that orjson writes as
    RFC 8785 does (proven.stored_fields): string keys and only JSON's values. orjson's compact JSON of them with sorted
    keys, when it is ASCII, is byte for byte Python's and RFC 8785's (a
    property test holds it), at a fraction of the cost."""


def canonical(event_fields: Mapping[str, Any], parsed: bool = False) -> bytes:
    """The bytes that are hashed: every envelope field but `hash` and the writer's `signature`."""
    hashed = {k: v for k, v in event_fields.items() if k not in NOT_HASHED}
    if type(event_fields) is StrictlyParsed:
        out = orjson.dumps(hashed, option=orjson.OPT_SORT_KEYS)
        # Else text beyond ASCII, whose sort order and escapes canonical_json decides.
        return out if out.isascii() else canonical_json(hashed, parsed=True)
    return canonical_json(hashed, parsed)


# In compact JSON text, a number token that is a float (Python prints every
# float with "." or "e") or an integer of 16 digits or more, right after the
# ":", "[" or "," before any value. Inside strings it may match too: a false
# alarm, which only sends the document to the walk.
_UNSAFE_NUMBER = re.compile(r"[:,\[]-?(?:\d{16}|\d+[.e])")


def canonical_json(value: Any, parsed: bool = False) -> bytes:
    """RFC 8785 canonical JSON. The rfc8785 package is the reference but is pure
    Python and dominated decide's and every replay's cost; for documents where
    Python's own JSON output is provably the same bytes (ASCII keys, safe
    integers, floats that print alike in Python and ECMAScript) we use it, else
    the reference. tests/unit/test_canonical_json.py holds the two equal on
    random documents."""
    try:
        out = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError):
        return rfc8785.dumps(value)  # non-finite numbers, keys of mixed types, non-JSON values: its verdict
    # An all-ASCII output has ASCII keys (sorted alike by code point and by
    # UTF-16 unit); else the full walk decides, keys included. `parsed`: the
    # value is a dict read from JSON text (string keys, JSON values only), so
    # its output text alone shows whether every number is safe and no float.
    if out.isascii() and parsed and type(value) is dict and _UNSAFE_NUMBER.search(out) is None:
        return out.encode("utf-8")
    if (_numbers_plain(value) if out.isascii() else _plain(value)):
        try:
            return out.encode("utf-8")
        except UnicodeEncodeError:
            pass  # lone surrogates: let the reference decide
    return rfc8785.dumps(value)


def _numbers_plain(value: Any) -> bool:
    """Whether every key is a str and every number prints alike in Python and
    ECMAScript: _plain without its per-key ASCII test, as a loop (an event has
    dozens of values, and this runs for each event of every replay)."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict:
            for key in item:
                if type(key) is not str:
                    return False
            pending.extend(item.values())
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind is int:
            if not -SAFE_INTEGER <= item <= SAFE_INTEGER:
                return False
        elif not _plain(item):  # floats, and subclasses of the JSON types
            return False
    return True


def _plain(value: Any) -> bool:
    match value:
        case bool() | None | str():
            return True
        case int():
            return -SAFE_INTEGER <= value <= SAFE_INTEGER
        case float():
            # Both print the shortest round-trip digits in plain decimal here;
            # outside it their exponent notations differ. Integral floats print
            # as 3.0 in Python but 3 in ECMAScript.
            return not value.is_integer() and 1e-4 <= abs(value) < 1e16
        case dict():
            return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
        case list() | tuple():
            return all(_plain(v) for v in value)
    return False


def link_hash(prev_hash: str, event_fields: Mapping[str, Any], parsed: bool = False) -> str:
    """The event's hash. `parsed`: the fields were read from JSON text (see canonical_json)."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(event_fields, parsed)).hexdigest()


def first_broken_link(events: list[Any]) -> tuple[int, str] | None:
    """Check one model's events in log order: seq gapless from 1, each prev_hash
    the previous hash, each hash recomputed. Events are pydantic events or their
    stored JSON as dicts (use the stored form for events that were upcast).
    Returns (index, why) of the first bad event, or None when the chain holds."""
    prev_hash, seq = GENESIS_HASH, 0
    for index, event in enumerate(events):
        fields = event if isinstance(event, dict) else event.model_dump(mode="json")
        if problem := link_problem(seq, prev_hash, fields):
            return index, problem
        prev_hash, seq = fields["hash"], fields["seq"]
    return None


def link_problem(head_seq: int, head_hash: str, fields: dict[str, Any], check_content: bool = True) -> str | None:
    """Why an event (its fields as stored) does not continue a chain whose last
    event is (head_seq, head_hash), or None when it does. (0, GENESIS_HASH) is
    the head of a model with no events yet."""
    if fields["seq"] != head_seq + 1:
        return f"seq {fields['seq']} follows {head_seq}"
    if fields["prev_hash"] != head_hash:
        return f"prev_hash does not link to seq {head_seq}"
    if check_content and fields["hash"] != link_hash(head_hash, fields):
        return "hash does not match the event's content"
    return None


class Arrival(NamedTuple):
    """How a reader keeping one event per (model, seq) takes an arriving event."""

    problem: str | None  # why it breaks the chain; None when it continues it
    keep: bool           # False: a second event at a seq already held (kept as evidence only)


def judge_arrival(head_seq: int, head_hash: str, fields: dict[str, Any], check_content: bool = True) -> Arrival:
    """An event arriving after the model's stored head. A gap or a bad link is
    kept (it is in the log, and later events link to it) and reported."""
    return Arrival(link_problem(head_seq, head_hash, fields, check_content), fields["seq"] > head_seq)
