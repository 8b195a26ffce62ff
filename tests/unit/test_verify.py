"""Verification pinpoints every kind of tampering with the stored log."""

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.audit.verify import StoredRecord, verify
from modelog_contract.codec import encode
from modelog_contract.domain.chain import link_hash
from modelog_contract.domain.events import Event
from modelog_contract.signing import TrustedKey, TrustedKeys, sign_event
from tests.unit.builders import Scenario, register

WRITER = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([TrustedKey(WRITER.public_key())])


def stored_log(models=("fraud-detector", "churn"), versions=3) -> list[StoredRecord]:
    """Real events, as the promoter would have written them, interleaved across models."""
    records, offset = [], 0
    scenarios = {m: Scenario(model=m) for m in models}
    for n in range(1, versions + 1):
        for model, s in scenarios.items():
            for event in s.when(register(model=model, n=n)):
                records.append(StoredRecord(0, offset, encode(sign_event(event, WRITER))))
                offset += 2  # transaction markers leave gaps
    return records


def problems(records) -> list[tuple[str, int | None, int, str]]:
    return [(b.model, b.seq, b.offset, b.problem) for b in verify(records, trusted=TRUSTED).breaks]


def test_an_untouched_log_verifies():
    verdict = verify(stored_log(), trusted=TRUSTED)
    assert verdict.intact and verdict.models == 2 and verdict.events == 8


def test_one_changed_byte_is_caught_at_that_event():
    records = stored_log()
    target = records[3]
    tampered = target.value.replace(b'"alice"', b'"alicf"')
    assert tampered != target.value
    records[3] = StoredRecord(target.partition, target.offset, tampered)
    (_model, _seq, offset, problem), *_ = problems(records)
    assert (offset, "hash does not match" in problem) == (target.offset, True)


def test_a_byte_that_breaks_the_json_is_caught_as_unreadable():
    records = stored_log()
    records[2] = StoredRecord(0, records[2].offset, records[2].value[:-1])
    found = problems(records)
    assert found[0][2] == records[2].offset and "unreadable" in found[0][3]


def test_a_dropped_event_is_caught_at_the_gap():
    records = stored_log()
    fraud = [r for r in records if b'"fraud-detector"' in r.value]
    dropped = fraud[2]  # seq 3
    found = problems([r for r in records if r is not dropped])
    assert found[0][:2] == ("fraud-detector", 4) and "seq 3 here, found 4 (an event is missing)" in found[0][3]


def test_two_swapped_events_are_caught():
    records = stored_log()
    fraud = [i for i, r in enumerate(records) if b'"fraud-detector"' in r.value]
    a, b = fraud[1], fraud[2]
    records[a], records[b] = records[b], records[a]
    found = problems(records)
    assert [(m, seq, offset) for m, seq, offset, _ in found[:2]] == [
        ("fraud-detector", 3, records[a].offset), ("fraud-detector", 2, records[b].offset)]
    assert "expected seq 2 here, found 3" in found[0][3] and "out of order" in found[1][3]


def test_a_forked_chain_is_caught_at_the_second_event_for_the_seq():
    records = stored_log()
    original = json.loads(records[-1].value)
    fork = {**original, "event_id": "00000000-0000-5000-8000-000000000000",
            "payload": {**original["payload"], "run_id": "forged"}}
    fork["hash"] = link_hash(fork["prev_hash"], fork)  # self-consistent, but a second seq
    fork = sign_event(Event.model_validate(fork), WRITER)  # as a writer that decided twice would
    records.append(StoredRecord(0, records[-1].offset + 2, encode(fork)))
    [(model, seq, _offset, problem)] = problems(records)
    assert (model, seq) == (original["model"], original["seq"]) and problem.startswith("fork")


def forged_next(records: list[StoredRecord], model: str, key: Ed25519PrivateKey | None) -> StoredRecord:
    """The model's next event, correctly chained, signed by `key` (None: unsigned)."""
    last = [json.loads(r.value) for r in records if json.loads(r.value)["model"] == model][-1]
    forged = {**last, "event_id": "00000000-0000-5000-8000-00000000000f", "seq": last["seq"] + 1,
              "prev_hash": last["hash"], "signature": None}
    forged["hash"] = link_hash(forged["prev_hash"], forged)
    event = Event.model_validate(forged)
    return StoredRecord(0, records[-1].offset + 2, encode(sign_event(event, key) if key else event))


def test_an_unsigned_event_is_named_and_left_out_of_its_chain():
    records = stored_log()
    forged = forged_next(records, "churn", None)
    [(model, seq, offset, problem)] = problems([*records, forged])
    assert (model, seq, offset) == ("churn", 5, forged.offset) and problem.startswith("unsigned")
    assert "00000000-0000-5000-8000-00000000000f" in problem


def test_an_event_signed_by_an_untrusted_key_is_named():
    records = stored_log()
    forged = forged_next(records, "churn", Ed25519PrivateKey.generate())
    [(model, seq, offset, problem)] = problems([*records, forged])
    assert (model, seq, offset) == ("churn", 5, forged.offset) and "does not trust" in problem


def test_a_signed_event_whose_signature_was_replaced_does_not_verify():
    records = stored_log()
    event = json.loads(records[-1].value)
    other = json.loads(records[-2].value)
    event["signature"] = other["signature"]  # a real signature, over another hash
    records[-1] = StoredRecord(0, records[-1].offset, json.dumps(event).encode())
    [(_model, _seq, offset, problem)] = problems(records)
    assert offset == records[-1].offset and "does not verify" in problem


def test_workers_find_the_same_breaks_in_the_same_order_as_one_process():
    """Proving in worker processes is only faster: every kind of break above,
    in one log, is named alike with and without them."""
    records = stored_log(models=("fraud-detector", "churn", "ltv"), versions=4)
    records += [forged_next(records, "churn", None), forged_next(records, "ltv", Ed25519PrivateKey.generate())]
    records[3] = StoredRecord(0, records[3].offset, records[3].value.replace(b'"alice"', b'"alicf"'))
    records[5] = StoredRecord(0, records[5].offset, records[5].value[:-1])
    alone = verify(records, trusted=TRUSTED)
    with_workers = verify(records, trusted=TRUSTED, workers=2)
    assert len(alone.breaks) >= 4 and with_workers == alone
