"""The writer's signature: only an event the promoter signed, unaltered, is proven."""

import json
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.chain import link_hash
from modelog_contract.domain.commands import SetTag
from modelog_contract.signing import TrustedKey, TrustedKeys, key_id, sign_event
from tests.unit.builders import T0, Scenario, command, register

WRITER = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([TrustedKey(WRITER.public_key())])


def history(n: int = 3):
    return Scenario().given(register(n=1), *[command(SetTag, key=f"k{i}", value="v") for i in range(n)]).events


def stored(event) -> dict:
    """The event as a reader gets it from the log."""
    return json.loads(event.model_dump_json())


def test_a_signed_event_is_proven():
    for event in history():
        assert TRUSTED.problem(stored(sign_event(event, WRITER))) is None


def test_signing_leaves_the_hash_and_the_chain_as_they_were():
    event = history()[0]
    signed = stored(sign_event(event, WRITER))
    assert signed["hash"] == event.hash == link_hash(event.prev_hash, signed)
    assert signed["signature"]["key_id"] == key_id(WRITER.public_key())


def test_an_unsigned_event_is_not_proven_even_when_correctly_chained():
    forged = stored(history()[-1])  # hash and prev_hash are right: anyone can compute them
    assert TRUSTED.problem(forged) == "unsigned: the event carries no writer's signature"


def test_a_signed_event_whose_content_changed_is_refused():
    signed = stored(sign_event(history()[-1], WRITER))
    signed["actor"]["subject"] = "mallory"
    assert TRUSTED.problem(signed) == "hash does not match the event's content"


def test_a_rehashed_event_keeps_a_signature_that_no_longer_verifies():
    signed = stored(sign_event(history()[-1], WRITER))
    signed["actor"]["subject"] = "mallory"
    signed["hash"] = link_hash(signed["prev_hash"], signed)
    assert TRUSTED.problem(signed) == "the writer's signature does not verify"


def test_a_key_the_reader_does_not_trust_is_refused():
    other = Ed25519PrivateKey.generate()
    problem = TRUSTED.problem(stored(sign_event(history()[0], other)))
    assert problem is not None and problem.startswith(f"signed by key {key_id(other.public_key())[:16]}")


def test_a_retired_key_verifies_its_old_events_and_no_new_one():
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    rotated = TrustedKeys([TrustedKey(old.public_key(), retired_after=T0 + timedelta(minutes=1)),
                           TrustedKey(new.public_key())])
    before, after = history()[0], history()[0].model_copy(update={"occurred_at": T0 + timedelta(hours=1)})
    after = after.model_copy(update={"hash": link_hash(after.prev_hash, after.model_dump(mode="json"))})
    assert rotated.problem(stored(sign_event(before, old))) is None
    assert "after it was retired" in (rotated.problem(stored(sign_event(after, old))) or "")
    assert rotated.problem(stored(sign_event(after, new))) is None


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=64, max_size=64))
def test_no_random_signature_verifies(noise):
    import base64

    signed = stored(sign_event(history()[0], WRITER))
    signed["signature"]["value"] = base64.b64encode(noise).decode()
    assert TRUSTED.problem(signed) == "the writer's signature does not verify"


def test_trusted_keys_reach_worker_processes_whole():
    """A reader hands its trusted keys to the processes that prove records for
    it: pickled and back, they prove and refuse exactly as before."""
    import pickle

    old = Ed25519PrivateKey.generate()
    rotated = TrustedKeys([TrustedKey(old.public_key(), retired_after=T0 + timedelta(minutes=1)),
                           TrustedKey(WRITER.public_key())])
    copied = pickle.loads(pickle.dumps(rotated))
    after = history()[0].model_copy(update={"occurred_at": T0 + timedelta(hours=1)})
    after = after.model_copy(update={"hash": link_hash(after.prev_hash, after.model_dump(mode="json"))})
    for event in [*history(), after]:
        for key in (old, WRITER, Ed25519PrivateKey.generate()):
            assert copied.problem(stored(sign_event(event, key))) == rotated.problem(stored(sign_event(event, key)))
    assert copied.by_id.keys() == rotated.by_id.keys()
