"""Our fast canonical JSON is byte-for-byte RFC 8785 (the reference package)."""

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.chain import canonical_json

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.integers(-(2**54), 2**54) | st.text()
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([0.1, 1e-5, 1e-4, 123.456, 1e15 + 0.5, 1e16, 1e21, 2.0, -0.0, 5e-324]))
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(["a", "b", "é", "\U0001F600", "\uE000"]),
                      children, max_size=5),
    max_leaves=30,
)


def reference(document):
    try:
        return rfc8785.dumps(document)
    except Exception as error:  # the reference refuses some documents; so must we
        return type(error)


def ours(document):
    try:
        return canonical_json(document)
    except Exception as error:
        return type(error)


@settings(max_examples=2000, deadline=None)
@given(documents)
def test_fast_canonical_json_equals_rfc8785(document):
    assert ours(document) == reference(document)


def test_an_event_like_document_takes_the_fast_path_and_matches():
    event = {"seq": 12, "metrics": {"auc": 0.9312, "latency_p99_ms": 41.5}, "model": "fraud-detector",
             "payload": {"tags": {"team": "risk"}, "size": 801}, "ok": True, "run": None}
    assert canonical_json(event) == rfc8785.dumps(event)


# Events as the log stores them: an envelope of known keys, a payload of any
# shape, text anywhere (control characters, astral and private-use ones, lone
# surrogates), numbers at every edge of the safe ranges.
texts = st.text() | st.sampled_from(["", "é", "\U0001F600", "\uE000", "\ud800", "\x00\x1f\x7f", "\u2028", '"\\/'])
numbers = (st.integers(-(2**70), 2**70) | st.sampled_from([2**53 - 1, 2**53, -(2**53 - 1), -(2**53)])
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([1e16 - 2, 1e16, 9.999999999999998e-05, 1e-4, 4503599627370496.5, 0.0, -0.0]))
event_documents = st.fixed_dictionaries({
    "event_id": st.uuids().map(str), "type": texts, "schema_version": st.integers(1, 3), "model": texts,
    "seq": numbers, "prev_hash": texts, "occurred_at": texts, "command_id": st.uuids().map(str),
    "actor": st.fixed_dictionaries({"subject": texts, "roles": st.lists(texts, max_size=3)}),
    "closes_decision": st.booleans(), "command_position": st.none() | numbers,
    "payload": st.dictionaries(texts, st.recursive(st.none() | st.booleans() | numbers | texts,
                                                   lambda c: st.lists(c, max_size=3)
                                                   | st.dictionaries(texts, c, max_size=3), max_leaves=10),
                               max_size=6),
})


@settings(max_examples=3000, deadline=None)
@given(event_documents)
def test_event_shaped_documents_canonicalise_as_rfc8785(document):
    assert ours(document) == reference(document)
