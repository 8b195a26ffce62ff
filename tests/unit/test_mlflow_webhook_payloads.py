"""MLflow-style webhooks, the pure part: which MLflow event each modelog event
is, with the payload MLflow's receivers read, and MLflow's signature, checked
against MLflow's own signing and payload types (the `mlflow` dev dependency)."""

import json
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlflow.entities.webhook import WebhookEvent
from mlflow.webhooks.delivery import _generate_hmac_signature
from mlflow.webhooks.types import get_payload_class_for_event

from modelog_contract.domain.commands import (
    ApproveTransition,
    DeleteAlias,
    DeleteTag,
    DenyTransition,
    ReportMetrics,
    RequestTransition,
    SetAlias,
    SetTag,
)
from projector import mlflow_payloads
from projector.mlflow_payloads import MLFLOW_EVENTS, MODELOG_EVENTS, UnknownEvent
from tests.unit.builders import BOB, CAROL, Scenario, command, create, register


def mlflow_events_of(scenario: Scenario) -> list[tuple[str, dict]]:
    return [found for event in scenario.events if (found := mlflow_payloads.mlflow_event(event))]


def test_a_workflow_through_modelog_is_every_mlflow_event_with_mlflow_payloads():
    # given a model, a version, a version tag set and deleted, an alias set and deleted
    s = Scenario().given(create(description="scores card payments", tags={"team": "fraud"}),
                         register(run_id="run-7", tags={"framework": "sklearn"}, description="first"),
                         command(SetTag, version=1, key="reviewed", value="yes"),
                         command(DeleteTag, version=1, key="reviewed"),
                         command(SetAlias, alias="champion", version=1),
                         command(DeleteAlias, alias="champion"))
    # then each is the MLflow event MLflow's server would have sent, with its data
    assert mlflow_events_of(s) == [
        ("registered_model.created", {"name": "fraud-detector", "tags": {"team": "fraud"},
                                      "description": "scores card payments"}),
        ("model_version.created", {"name": "fraud-detector", "version": "1",
                                   "source": "s3://modelog-artifacts/sha256/" + f"{1:064x}", "run_id": "run-7",
                                   "tags": {"framework": "sklearn"}, "description": "first"}),
        ("model_version_tag.set", {"name": "fraud-detector", "version": "1", "key": "reviewed", "value": "yes"}),
        ("model_version_tag.deleted", {"name": "fraud-detector", "version": "1", "key": "reviewed"}),
        ("model_version_alias.created", {"name": "fraud-detector", "alias": "champion", "version": "1"}),
        ("model_version_alias.deleted", {"name": "fraud-detector", "alias": "champion"}),
    ]


def test_every_mlflow_event_has_the_keys_of_mlflows_own_payload_type():
    s = Scenario().given(create(), register(), command(SetTag, version=1, key="k", value="v"),
                         command(DeleteTag, version=1, key="k"), command(SetAlias, alias="a", version=1),
                         command(DeleteAlias, alias="a"))
    seen = dict(mlflow_events_of(s))
    assert set(seen) == set(MLFLOW_EVENTS)
    for name, data in seen.items():
        payload_type = get_payload_class_for_event(WebhookEvent.from_str(name))
        assert set(data) == set(payload_type.__annotations__), name
        assert set(mlflow_payloads.EXAMPLES[name]) == set(payload_type.__annotations__), name


def test_the_source_an_mlflow_client_gave_is_the_source_sent():
    s = Scenario().given(create(), register(extra={"mlflow": {"source": "models:/m-0123", "run_link": None}}))
    assert mlflow_events_of(s)[1][1]["source"] == "models:/m-0123"


def test_a_promotion_with_an_approval_is_modelogs_own_events_named_in_mlflows_style():
    # given a version in Staging, requested for Production by alice
    s = Scenario().given(create(), register(), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production", comment="ready"))
    request_id = str(requested.payload.request_id)
    # when bob approves
    approved = s.when(command(ApproveTransition, actor=BOB, request_id=request_id, comment="looks good"))
    found = [mlflow_payloads.mlflow_event(e) for e in [requested, *approved]]
    # then: the request, the approval, and the move it decided
    assert found == [
        ("model_version_stage_transition.requested", {
            "name": "fraud-detector", "version": "1", "request_id": request_id, "from_stage": "Staging",
            "to_stage": "Production", "archive_existing_versions": True, "approvals_required": 1,
            "comment": "ready", "actor": "alice"}),
        ("model_version_approval.granted", {
            "name": "fraud-detector", "version": "1", "request_id": request_id, "approvals": 1,
            "approvals_required": 1, "comment": "looks good", "actor": "bob"}),
        ("model_version_stage.transitioned", {
            "name": "fraud-detector", "version": "1", "from_stage": "Staging", "to_stage": "Production",
            "reason": "promoted", "request_id": request_id, "actor": "bob"}),
    ]
    assert {name for name, _ in found} <= set(MODELOG_EVENTS)


def test_a_denied_request_is_an_approval_denied():
    s = Scenario().given(create(), register(), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    [denied] = s.when(command(DenyTransition, actor=CAROL, request_id=requested.payload.request_id,
                              comment="not yet"))
    assert mlflow_payloads.mlflow_event(denied) == ("model_version_approval.denied", {
        "name": "fraud-detector", "version": "1", "request_id": str(requested.payload.request_id),
        "comment": "not yet", "actor": "carol"})


def test_what_mlflow_has_no_event_for_is_sent_to_no_mlflow_webhook():
    # a model tag, metrics, a refused command
    s = Scenario().given(create(), register(), command(SetTag, key="owner", value="fraud-team"),
                         command(ReportMetrics, version=1, metrics={"auc": 0.9}))
    refused = s.when(command(SetAlias, alias="champion", version=9))
    assert [mlflow_payloads.mlflow_event(e) for e in [*s.events[2:4], *refused]] == [None, None, None]
    assert mlflow_payloads.delivery(refused[0]) is None


def test_a_delivery_body_is_mlflows_envelope_stamped_with_the_events_time():
    s = Scenario().given(create())
    name, body = mlflow_payloads.delivery(s.events[0])
    assert name == "registered_model.created"
    assert json.loads(body) == {"entity": "registered_model", "action": "created",
                                "timestamp": s.events[0].occurred_at.isoformat(),
                                "data": {"name": "fraud-detector", "tags": {}, "description": None}}


@pytest.mark.parametrize("name", MLFLOW_EVENTS + MODELOG_EVENTS)
def test_an_event_round_trips_through_mlflows_rest_spelling(name):
    wire = mlflow_payloads.wire_event(name)
    assert wire["entity"].isupper() and wire["action"].isupper()
    assert mlflow_payloads.event_name(wire["entity"], wire["action"]) == name


def test_an_event_nobody_sends_is_refused_naming_the_events_there_are():
    with pytest.raises(UnknownEvent, match=r"model_version\.created"):
        mlflow_payloads.event_name("MODEL_VERSION", "UPDATED")


@given(secret=st.text(min_size=1), body=st.text(), timestamp=st.integers(0, 2**40))
def test_the_signature_is_the_one_mlflow_computes(secret, body, timestamp):
    delivery_id = str(uuid4())
    ours = mlflow_payloads.signature(secret, delivery_id, timestamp, body.encode())
    assert ours == _generate_hmac_signature(secret, delivery_id, str(timestamp), body)


def test_a_webhook_without_a_secret_is_sent_unsigned_as_mlflow_does():
    sent = mlflow_payloads.headers("", "d-1", 1700000000, b"{}")
    assert sent == {"Content-Type": "application/json", "X-MLflow-Delivery-Id": "d-1",
                    "X-MLflow-Timestamp": "1700000000"}
    assert mlflow_payloads.headers("s3cret", "d-1", 1700000000, b"{}")["X-MLflow-Signature"].startswith("v1,")
