"""Our fast canonical JSON is byte-for-byte RFC 8785 (the reference package)."""

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.chain import canonical_json

scalars = (st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text()
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
