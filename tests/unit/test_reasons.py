"""Reason codes: one enum, each code with its HTTP status and meaning beside it."""

import json

from modelog_contract.codec import decode_event, encode
from modelog_contract.domain.chain import first_broken_link
from modelog_contract.domain.reasons import EXPLAINED, Reason
from modelog_contract.schemas import contract
from registrar.outcomes import rejection_status
from tests.unit.builders import Scenario, create


def test_every_reason_has_a_status_and_a_meaning():
    assert set(EXPLAINED) == set(Reason)
    for reason in Reason:
        assert 400 <= reason.status < 500 and reason.meaning, reason


def test_a_reason_is_its_code_on_the_wire_and_in_text():
    assert Reason("gate_failed") is Reason.GATE_FAILED
    assert (str(Reason.GATE_FAILED), f"{Reason.GATE_FAILED}", json.dumps(Reason.GATE_FAILED)) == (
        "gate_failed", "gate_failed", '"gate_failed"')


def test_a_refusal_stores_the_code_as_a_plain_string_and_reads_back_as_the_reason():
    s = Scenario().given(create())
    [refused] = s.when(create())
    stored = json.loads(encode(refused))
    assert stored["payload"]["reason"] == "model_exists"
    assert decode_event(encode(refused)).payload.reason is Reason.MODEL_EXISTS
    assert first_broken_link(s.events) is None and first_broken_link([json.loads(encode(e)) for e in s.events]) is None


def test_the_published_schema_lists_every_code_and_what_it_means():
    schema = contract()["events"]["$defs"]["Reason"]
    assert schema["enum"] == [r.value for r in Reason]
    assert "- self_approval (HTTP 403): four eyes:" in schema["description"]


def test_the_registrar_answers_a_refusal_with_the_status_beside_its_code():
    assert [rejection_status(code) for code in ("version_conflict", "version_not_found", "unauthenticated")] == [
        409, 404, 401]
    assert rejection_status("a_code_this_registrar_does_not_know") == 422

