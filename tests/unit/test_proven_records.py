"""A reader takes a record of the log as proven (the event) or refused (why)."""

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.codec import decode_event, encode
from modelog_contract.proven import Refused, proven_event
from modelog_contract.signing import TrustedKey, TrustedKeys, sign_event
from tests.unit.builders import Scenario, register

WRITER = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([TrustedKey(WRITER.public_key())])
EVENTS = Scenario().given(register(n=1)).events


def test_a_signed_record_decodes_to_the_same_event_as_the_codec():
    for event in EVENTS:
        raw = encode(sign_event(event, WRITER))
        assert proven_event(raw, TRUSTED) == decode_event(raw)


def test_an_unsigned_record_is_refused_with_where_it_claims_to_be():
    refused = proven_event(encode(EVENTS[1]), TRUSTED)
    assert isinstance(refused, Refused) and refused.problem.startswith("unsigned")
    assert (refused.model, refused.seq, refused.event_id) == (EVENTS[1].model, 2, EVENTS[1].event_id)
    assert refused.describe(3, 17).startswith(f"model {EVENTS[1].model} seq 2 (partition 3, offset 17, event ")


def test_a_record_that_is_not_json_is_refused_not_raised():
    refused = proven_event(b"\x00not json", TRUSTED)
    assert isinstance(refused, Refused) and "unreadable" in refused.problem
    assert (refused.model, refused.seq, refused.event_id) == (None, None, None)
