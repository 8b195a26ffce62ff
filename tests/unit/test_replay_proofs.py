"""A replay proves a chunk of records with one signature check per chain run
(decision 0013), and refuses exactly what proving each record alone refuses:
a random log with one record forged, altered, unsigned, signed by a stranger,
forked, dropped or unreadable anywhere, cut into chunks anywhere, gets the
same problems record by record and the same verdict from `audit verify`.
The one difference is named and tested on its own: an event whose content is
intact and a later signed event proves, but whose own signature bytes were
damaged, is proven by the run."""

import itertools
import json

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract import replay_proofs
from modelog_contract.audit.verify import StoredRecord, verify
from modelog_contract.codec import encode
from modelog_contract.domain.chain import canonical_json, link_hash
from modelog_contract.domain.events import Event
from modelog_contract.proven import proof_problem, stored_fields
from modelog_contract.replay_proofs import OpenRuns, chunk_problems, chunk_proofs
from modelog_contract.signing import TrustedKey, TrustedKeys, sign_event
from tests.unit.builders import Scenario, register

WRITER, STRANGER = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([TrustedKey(WRITER.public_key())])


def signed_log(models=("fraud-detector", "churn", "ltv"), versions=4) -> list[bytes]:
    """Real events as the promoter writes them, the models interleaved."""
    scenarios, values = {m: Scenario(model=m) for m in models}, []
    for n in range(1, versions + 1):
        for model, scenario in scenarios.items():
            values += [encode(sign_event(event, WRITER)) for event in scenario.when(register(model=model, n=n))]
    return values


LOG = signed_log()


def resigned(fields: dict, key: Ed25519PrivateKey | None) -> bytes:
    fields = {**fields, "signature": None}
    fields["hash"] = link_hash(fields["prev_hash"], fields)
    event = Event.model_validate(fields)
    return encode(sign_event(event, key) if key else event)


def tampered(values: list[bytes], kind: str, at: int) -> list[bytes]:
    """The log with one record tampered with, as someone who can append to the
    log or change a copy of it would; never the exception of the module docstring."""
    values, fields = list(values), json.loads(values[at])
    forged = {**fields, "payload": {**fields["payload"], "description": "forged"}}
    match kind:
        case "unsigned":
            values[at] = json.dumps({**fields, "signature": None}).encode()
        case "stranger":
            values[at] = resigned(fields, STRANGER)
        case "altered":  # content changed, hash and signature kept
            values[at] = json.dumps({**forged, "hash": fields["hash"]}).encode()
        case "rehashed":  # content changed and hashed again, the real signature kept
            values[at] = json.dumps({**forged, "hash": link_hash(fields["prev_hash"], forged)}).encode()
        case "fork by a stranger":
            values.insert(at + 1, resigned(forged, STRANGER))
        case "fork by the writer":  # a writer that decided twice
            values.insert(at + 1, resigned(forged, WRITER))
        case "appended, signature of another":
            head = next(json.loads(v) for v in reversed(values) if json.loads(v)["model"] == fields["model"])
            after = {**forged, "seq": head["seq"] + 1, "prev_hash": head["hash"]}
            after["hash"] = link_hash(after["prev_hash"], after)
            values.append(json.dumps({**after, "signature": fields["signature"]}).encode())
        case "a copy, its signature damaged":  # the writer's content, after the original, anywhere
            other = json.loads(values[at - 1])["signature"]["value"]
            copy = {**fields, "signature": {**fields["signature"], "value": other}}
            values.insert(len(values) if at % 2 else at + 1, json.dumps(copy).encode())
        case "dropped":
            del values[at]
        case "unreadable":
            values[at] = values[at][:-1]
    return values


KINDS = ["unsigned", "stranger", "altered", "rehashed", "fork by a stranger", "fork by the writer",
         "appended, signature of another", "a copy, its signature damaged", "dropped", "unreadable"]


def in_chunks(values: list[bytes], cuts: list[int], carried: bool) -> list[str | None]:
    """Proven in chunks cut at `cuts`; `carried`: each model's run going on
    from chunk to chunk, as a replay proving its chunks in turn carries it."""
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    open_runs: OpenRuns | None = {} if carried else None
    return [problem for start, stop in itertools.pairwise(bounds)
            for problem in chunk_problems(values[start:stop], TRUSTED, open_runs)]


def one_by_one(values, trusted, open_runs=None):
    """The reference: every record proven alone, as every live reader proves it."""
    return [stored_fields(v) for v in values], [proof_problem(v, trusted) for v in values]


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), at=st.integers(0, len(LOG) - 1), cuts=st.lists(st.integers(0, 40), max_size=3),
       carried=st.booleans())
def test_one_tampered_record_anywhere_is_refused_as_proving_each_record_refuses_it(kind, at, cuts, carried):
    values = tampered(LOG, kind, at)
    assert in_chunks(values, cuts, carried) == [proof_problem(v, TRUSTED) for v in values]


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), at=st.integers(0, len(LOG) - 1))
def test_audit_verify_finds_the_same_breaks_as_with_a_signature_check_per_event(kind, at, monkeypatch_module):
    records = [StoredRecord(0, 2 * n, v) for n, v in enumerate(tampered(LOG, kind, at))]
    fast = verify(records, trusted=TRUSTED)
    with monkeypatch_module.context() as patch:
        patch.setattr(replay_proofs, "chunk_proofs", one_by_one)
        assert verify(records, trusted=TRUSTED) == fast
    assert not fast.intact or kind == "dropped"  # a model's newest event dropped: only a seal shows it


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_an_untouched_log_needs_two_signature_checks_per_model_and_chunk(monkeypatch):
    checked = []
    monkeypatch.setattr(TrustedKeys, "signature_problem", lambda self, fields: checked.append(fields["model"]))
    assert chunk_problems(LOG, TRUSTED) == [None] * len(LOG)
    assert sorted(checked) == ["churn", "churn", "fraud-detector", "fraud-detector", "ltv", "ltv"]


def test_a_run_carried_on_from_the_chunk_before_needs_one_signature_check_per_model(monkeypatch):
    checked = []
    real = TrustedKeys.signature_problem
    monkeypatch.setattr(TrustedKeys, "signature_problem",
                        lambda self, fields: checked.append(fields["model"]) or real(self, fields))
    open_runs: OpenRuns = {}
    half = len(LOG) // 2
    assert chunk_problems(LOG[:half], TRUSTED, open_runs) == [None] * half
    assert sorted(open_runs) == ["churn", "fraud-detector", "ltv"]
    checked.clear()
    assert chunk_problems(LOG[half:], TRUSTED, open_runs) == [None] * (len(LOG) - half)
    assert sorted(checked) == ["churn", "fraud-detector", "ltv"]


def test_a_run_whose_newest_is_refused_is_not_carried_on():
    churn = [v for v in LOG if json.loads(v)["model"] == "churn"]
    damaged = json.loads(churn[1])
    damaged["signature"] = {**damaged["signature"], "value": json.loads(churn[0])["signature"]["value"]}
    open_runs: OpenRuns = {}
    assert chunk_problems([churn[0], json.dumps(damaged).encode()], TRUSTED, open_runs)[1] is not None
    assert open_runs == {}  # churn[0] was proven, but the run ended on the refused one
    # So the next chunk's first event, which links to the refused one, is checked itself.
    assert chunk_problems(churn[2:], TRUSTED, open_runs) == [None] * (len(churn) - 2)


def test_damaged_signature_bytes_inside_a_run_are_not_refused():
    """Decision 0013's one difference: an event neither first nor newest of its
    run, whose content is the writer's (the next event's signed hash commits
    to it), but whose own signature is not."""
    values = [v for v in LOG if json.loads(v)["model"] == "churn"]
    fields = json.loads(values[1])
    fields["signature"] = {**fields["signature"], "value": json.loads(values[0])["signature"]["value"]}
    values[1] = json.dumps(fields).encode()
    assert "does not verify" in str(proof_problem(values[1], TRUSTED))
    assert chunk_problems(values, TRUSTED) == [None] * len(values)
    # First or newest of its run in a chunk, it is checked, and refused.
    for chunk in (values[1:], values[:2]):
        assert "does not verify" in str(chunk_proofs(chunk, TRUSTED)[1][chunk.index(values[1])])


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.text(), JSON, max_size=5), ascii_only=st.booleans())
def test_a_record_is_read_as_the_json_module_reads_it(document, ascii_only):
    """stored_fields parses with pydantic's faster parser, and falls back to the
    json module for what that one refuses (lone surrogates among them)."""
    raw = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert repr(stored_fields(raw)) == repr(json.loads(raw))


numbers = (st.integers(-(2**70), 2**70) | st.sampled_from([2**53 - 1, 2**53, 10**15 - 1, 10**15, -(2**53)])
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([1e16, 1e-4, 9.999999999999998e-05, 4503599627370496.5, 2.0, -0.0, 5e-324]))
texts = st.text() | st.sampled_from(["é", "\U0001F600", ":1.5,", "[12345678901234567", "\ud800"])
read_back = st.dictionaries(texts, st.recursive(st.none() | st.booleans() | numbers | texts,
                                                lambda inner: st.lists(inner, max_size=3)
                                                | st.dictionaries(texts, inner, max_size=3), max_leaves=15),
                            max_size=6)


@settings(max_examples=1500, deadline=None)
@given(read_back)
def test_canonical_json_of_fields_read_from_json_equals_rfc8785(document):
    """A replay hashes fields read from JSON text: canonical_json(parsed=True)
    looks for unsafe numbers in its output text rather than walking them."""
    fields = json.loads(json.dumps(document))
    try:
        expected: object = rfc8785.dumps(fields)
    except Exception as error:  # the reference refuses some documents; so must we
        expected = type(error)
    try:
        ours: object = canonical_json(fields, parsed=True)
    except Exception as error:
        ours = type(error)
    assert ours == expected
