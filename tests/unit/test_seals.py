"""Seals: signed, chained snapshots of the chain heads, and the log checked against them."""

import base64
import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.audit.seals import (
    FIRST_PREVIOUS,
    Head,
    Seal,
    check_log_against_seal,
    check_log_against_seals,
    check_seal,
    check_seal_chain,
    heads_of,
    leaf_hash,
    make_seal,
    merkle_root,
)
from modelog_contract.domain.chain import GENESIS_HASH, canonical_json, link_hash
from tests.unit.builders import T0, Scenario, register

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def log_of(models=("fraud-detector", "churn"), versions=3) -> list[dict]:
    """Real events as stored: field dicts, interleaved across models."""
    scenarios = {m: Scenario(model=m) for m in models}
    return [e.model_dump(mode="json") for n in range(1, versions + 1)
            for m, s in scenarios.items() for e in s.when(register(model=m, n=n))]


def sealed(events, previous=None, at=T0) -> Seal:
    return make_seal(heads_of(events), previous, KEY, at)


def rechained(events: list[dict], model: str) -> list[dict]:
    """Recompute the model's prev_hash/hash links from its first event on, as a
    forger who holds no seal key but can write the topic would."""
    out, prev = [], GENESIS_HASH
    for fields in events:
        if fields["model"] == model:
            fields = {**fields, "prev_hash": prev}
            fields["hash"] = prev = link_hash(prev, fields)
        out.append(fields)
    return out


def problems(found) -> list[tuple]:
    return [(b.model, b.seq, b.problem) for b in found]


# --- the Merkle root ---------------------------------------------------------

def heads(n: int) -> list[Head]:
    return [Head(model=f"m{i:03d}", seq=i + 1, hash=f"{i:064x}") for i in range(n)]


def test_root_of_none_one_and_two_leaves_follows_rfc6962():
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()
    [one] = heads(1)
    assert leaf_hash(one) == hashlib.sha256(b"\x00" + canonical_json(
        {"model": "m000", "seq": 1, "hash": "0" * 64})).digest()
    assert merkle_root([one]) == leaf_hash(one).hex()
    a, b = heads(2)
    assert merkle_root([a, b]) == hashlib.sha256(b"\x01" + leaf_hash(a) + leaf_hash(b)).hexdigest()


def test_root_of_three_splits_at_the_largest_power_of_two_below():
    a, b, c = heads(3)
    left = hashlib.sha256(b"\x01" + leaf_hash(a) + leaf_hash(b)).digest()
    assert merkle_root([a, b, c]) == hashlib.sha256(b"\x01" + left + leaf_hash(c)).hexdigest()


def test_a_leaf_can_never_pass_for_a_node():
    a, b = heads(2)
    node = merkle_root([a, b])
    assert node not in {leaf_hash(h).hex() for h in (a, b)}
    assert merkle_root([a]) != merkle_root([a, a])


# --- making and checking one seal -----------------------------------------------

def test_a_seal_holds_every_head_sorted_signed_and_checks():
    events = log_of()
    seal = sealed(events)
    assert [(h.model, h.seq) for h in seal.heads] == [("churn", 4), ("fraud-detector", 4)]
    assert seal.number == 1 and seal.previous == FIRST_PREVIOUS and seal.root == merkle_root(seal.heads)
    assert check_seal(seal, PUBLIC) == []
    assert Seal.model_validate_json(seal.model_dump_json()) == seal


def test_the_next_seal_links_to_the_digest_of_the_one_before():
    first = sealed(log_of())
    second = sealed(log_of(versions=4), first, T0 + timedelta(minutes=10))
    assert (second.number, second.previous) == (2, first.digest)
    assert check_seal_chain([first, second]) == []


def test_a_seal_cannot_go_back_in_time_or_hold_a_model_twice():
    first = sealed(log_of())
    with pytest.raises(ValueError):
        sealed(log_of(), first, T0 - timedelta(seconds=1))
    with pytest.raises(ValueError):
        make_seal(heads(1) * 2, None, KEY, T0)
    with pytest.raises(ValueError):
        make_seal(heads(1), None, KEY, T0.replace(tzinfo=None))


def test_object_names_list_in_seal_order():
    first = sealed(log_of())
    second = sealed(log_of(), first, T0 + timedelta(hours=1))
    assert first.object_name == "seals/000000000001-20261102T091400000000Z.json"
    assert first.object_name < second.object_name


@pytest.mark.parametrize("change", [
    {"heads": (Head(model="churn", seq=3, hash="f" * 64),)},
    {"root": "0" * 64},
    {"sealed_at": T0 + timedelta(days=1)},
    {"previous": "1" * 64},
    {"number": 7},
])
def test_any_changed_field_breaks_the_signature(change):
    seal = sealed(log_of()).model_copy(update=change)
    assert any("signature does not verify" in b.problem for b in check_seal(seal, PUBLIC))


def test_a_seal_made_with_another_key_is_refused():
    seal = make_seal(heads_of(log_of()), None, Ed25519PrivateKey.generate(), T0)
    found = [b.problem for b in check_seal(seal, PUBLIC)]
    assert any("not the seal key" in p for p in found) and any("signature" in p for p in found)


def test_a_garbled_signature_is_a_problem_not_a_crash():
    seal = sealed(log_of()).model_copy(update={"signature": "not base64!"})
    assert next(b.problem for b in check_seal(seal, PUBLIC)).startswith("the signature does not verify")


def test_a_root_that_does_not_match_its_heads_is_named_even_if_re_signed():
    seal = sealed(log_of())
    forged = make_seal(seal.heads, None, KEY, T0).model_copy(update={"root": "0" * 64})
    assert any("Merkle root" in b.problem for b in check_seal(forged, PUBLIC))


# --- the seal chain -----------------------------------------------------------

ONE_LOG = log_of(("churn", "fraud-detector", "ranker"), 3)


def three_seals(events=ONE_LOG) -> list[Seal]:
    """Seals of the log as it grew: after 3 (no ranker yet), 6 and all 12 events."""
    seals = []
    for n, upto in enumerate((3, 6, len(events))):
        seals.append(sealed(events[:upto], seals[-1] if seals else None, T0 + timedelta(minutes=10 * n)))
    return seals


def test_a_dropped_seal_breaks_the_chain_at_the_next():
    a, _, c = three_seals()
    found = check_seal_chain([a, c])
    assert [b.seal for b in found] == [3, 3]
    assert "expected seal 2" in found[0].problem and "does not link to seal 1" in found[1].problem


def test_a_seal_replaced_by_a_re_signed_one_breaks_the_link_after_it():
    a, b, c = three_seals()
    forged = make_seal([h.model_copy(update={"hash": "f" * 64}) for h in b.heads], a, KEY, b.sealed_at)
    assert [(x.seal, "does not link" in x.problem) for x in check_seal_chain([a, forged, c])] == [(3, True)]


def test_a_model_whose_seq_goes_back_between_seals_is_named():
    events = log_of()
    first = sealed(events)
    second = make_seal([h if h.model != "churn" else Head(model="churn", seq=2, hash=h.hash)
                        for h in first.heads], first, KEY, T0 + timedelta(minutes=1))
    assert problems(check_seal_chain([first, second])) == [
        ("churn", 2, "sealed at seq 4 in seal 1, at 2 here")]


def test_a_model_gone_from_a_later_seal_is_named():
    first = sealed(log_of())
    second = make_seal(first.heads[1:], first, KEY, T0 + timedelta(minutes=1))
    assert problems(check_seal_chain([first, second])) == [("churn", 4, "sealed in seal 1, missing here")]


# --- the log against a seal -----------------------------------------------------

def test_an_untouched_log_and_its_growth_agree_with_the_seal():
    events = log_of()
    seal = sealed(events)
    assert check_log_against_seal(seal, events) == []
    grown = log_of(versions=5)
    assert check_log_against_seal(sealed(grown[:6]), grown) == []


def test_a_rewritten_history_with_consistent_chains_is_named_at_the_sealed_seq():
    events = log_of()
    seal = sealed(events)
    tampered = [dict(e) for e in events]
    first_churn = next(i for i, e in enumerate(tampered) if e["model"] == "churn")
    tampered[first_churn]["actor"] = {**tampered[first_churn]["actor"], "subject": "mallory"}
    tampered = rechained(tampered, "churn")
    [(model, seq, problem)] = problems(check_log_against_seal(seal, tampered))
    assert (model, seq) == ("churn", 4) and "history was rewritten" in problem


def test_a_log_cut_below_the_sealed_seq_is_named():
    events = log_of()
    seal = sealed(events)
    cut = [e for e in events if not (e["model"] == "fraud-detector" and e["seq"] == 4)]
    assert problems(check_log_against_seal(seal, cut)) == [
        ("fraud-detector", 4, "the sealed seq is missing from the log (the model's log ends at seq 3)")]


def test_a_model_gone_from_the_log_is_named():
    events = log_of()
    seal = sealed(events)
    assert problems(check_log_against_seal(seal, [e for e in events if e["model"] != "churn"])) == [
        ("churn", 4, "the sealed model has no events in the log")]


def test_a_fork_at_the_sealed_seq_is_named_even_if_one_branch_matches():
    events = log_of()
    seal = sealed(events)
    fork = {**events[-1], "hash": "e" * 64}
    [(model, seq, _)] = problems(check_log_against_seal(seal, events + [fork]))
    assert (model, seq) == (events[-1]["model"], 4)


def test_every_check_together_over_many_seals():
    seals = three_seals()
    assert check_log_against_seals(seals, PUBLIC, ONE_LOG) == []
    tampered = rechained([{**e, "occurred_at": "2030-01-01T00:00:00Z"} if e["model"] == "ranker" else e
                          for e in ONE_LOG], "ranker")
    found = check_log_against_seals(seals, PUBLIC, tampered)
    assert [(b.seal, b.model, b.seq) for b in found] == [(2, "ranker", 2), (3, "ranker", 4)]


def test_signature_is_base64_of_64_bytes():
    assert len(base64.b64decode(sealed(log_of()).signature)) == 64


# --- properties -------------------------------------------------------------------

logs = st.builds(lambda n, v: log_of(tuple(f"model-{i}" for i in range(n)), v),
                 st.integers(1, 4), st.integers(1, 4))


@settings(max_examples=60, deadline=None)
@given(logs)
def test_property_an_untouched_log_passes(events):
    seal = sealed(events)
    assert check_seal(seal, PUBLIC) == [] and check_log_against_seal(seal, events) == []


@settings(max_examples=120, deadline=None)
@given(logs, st.data())
def test_property_any_single_change_to_a_sealed_head_is_detected(events, data):
    seal = sealed(events)
    i = data.draw(st.integers(0, len(seal.heads) - 1))
    head = seal.heads[i]
    field = data.draw(st.sampled_from(["model", "seq", "hash"]))
    changed = {"model": head.model + data.draw(st.text(min_size=1, max_size=3)),
               "seq": head.seq + data.draw(st.integers(1, 5) | st.integers(-5, -1)),
               "hash": data.draw(st.text("0123456789abcdef", min_size=64, max_size=64)
                                 .filter(lambda h: h != head.hash))}[field]
    forged_heads = seal.heads[:i] + (head.model_copy(update={field: changed}),) + seal.heads[i + 1:]
    # Unsigned change: the signature (and the root) catch it.
    assert check_seal(seal.model_copy(update={"heads": forged_heads}), PUBLIC)
    # Even re-signed by the seal key, the log disagrees with the changed head.
    if len({h.model for h in forged_heads}) == len(forged_heads):
        resigned = make_seal(forged_heads, None, KEY, T0)
        assert check_log_against_seal(resigned, events)


@settings(max_examples=120, deadline=None)
@given(logs, st.data())
def test_property_a_rewritten_history_with_consistent_chains_is_detected(events, data):
    seal = sealed(events)
    i = data.draw(st.integers(0, len(events) - 1))
    victim = events[i]["model"]
    tampered = [dict(e) for e in events]
    tampered[i]["occurred_at"] = data.draw(st.sampled_from(["1999-01-01T00:00:00Z", "2030-01-01T00:00:00Z"]))
    tampered = rechained(tampered, victim)
    from modelog_contract.domain.chain import first_broken_link
    assert first_broken_link([e for e in tampered if e["model"] == victim]) is None  # chains still hold
    found = check_log_against_seal(seal, tampered)
    assert [(b.model, "history was rewritten" in b.problem) for b in found] == [(victim, True)]
