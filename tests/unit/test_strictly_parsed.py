"""A record read by orjson is hashed from orjson's output only when that is
provably the canonical JSON: the bytes a replay hashes equal RFC 8785's for
any record, whichever parser read it."""

import json

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.chain import NOT_HASHED, StrictlyParsed, canonical
from modelog_contract.proven import stored_fields

texts = st.text() | st.sampled_from(["", "é", "\U0001F600", "\ud800", "\x00\x1f\x7f", '"\\/', "1.5", "3e-4,"])
numbers = (st.integers(-(2**70), 2**70) | st.floats()
           | st.sampled_from([2**53 - 1, 2**53, -(2**53 - 1), 2**63, 2**64, -(2**63) - 1, 10**19,
                              1e16, 1e-7, 2.0, -0.0, 5e-324]))
values = st.recursive(st.none() | st.booleans() | numbers | texts,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                      max_leaves=15)
records = st.fixed_dictionaries(
    {"model": texts, "seq": numbers, "payload": st.dictionaries(texts, values, max_size=4)},
    optional={"hash": values, "signature": values, "command_position": st.none()})


def reference(raw: bytes) -> object:
    """RFC 8785 of the hashed fields as the json module reads them, or the error it raises."""
    fields = json.loads(raw)
    try:
        return rfc8785.dumps({k: v for k, v in fields.items() if k not in NOT_HASHED})
    except Exception as error:
        return type(error)


def ours(fields: dict) -> object:
    try:
        return canonical(fields, parsed=True)
    except Exception as error:
        return type(error)


@settings(max_examples=2000, deadline=None)
@given(record=records, ascii_only=st.booleans())
def test_a_record_read_by_any_parser_hashes_as_rfc8785_says(record, ascii_only):
    raw = json.dumps(record, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    fields = stored_fields(raw)
    assert fields is not None
    assert repr(fields) == repr(json.loads(raw))
    assert ours(fields) == reference(raw)


def test_an_event_of_text_and_safe_integers_is_read_strictly():
    raw = b'{"model":"m","seq":3,"command_position":null,"payload":{"tags":{"a":"half"},"size":9007199254740991}}'
    assert type(stored_fields(raw)) is StrictlyParsed


def test_floats_orjson_writes_as_rfc8785_does_are_read_strictly():
    """Metrics are floats: an event that carries them is hashed from orjson's
    output too, when each of them is written there as RFC 8785 writes it."""
    for raw in (b'{"m":0.5}', b'{"auc": 0.8123, "loss": [-1234.5, 0.0001]}', b'{"m":1000000000000000.5}'):
        fields = stored_fields(raw)
        assert type(fields) is StrictlyParsed and canonical(fields) == rfc8785.dumps(json.loads(raw)), raw


def test_floats_long_integers_and_non_finite_numbers_are_read_as_written():
    """orjson would read these differently (a 20-digit integer as a float),
    write them otherwise than RFC 8785 (3.0, 1e+16, 0.00001) or not read them
    at all (NaN): they are read as before, and hashed by the full checks."""
    for raw in (b'{"m":3.0}', b'{"m":1e16}', b'{"m":0.00001}', b'{"m":-0.0}', b'{"m":1e-7}',
                b'{"m":9007199254740992}', b'{"m":18446744073709551616}',
                b'{"m":NaN}', b'{"m":-Infinity}', b'{"m":"\\ud800"}'):
        fields = stored_fields(raw)
        assert type(fields) is dict and repr(fields) == repr(json.loads(raw)), raw
