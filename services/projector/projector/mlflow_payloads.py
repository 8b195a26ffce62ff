"""MLflow-style webhooks: which MLflow event a modelog event is, the payload
MLflow's receivers expect for it, and MLflow's signature. Pure: no I/O, no
clock (the caller passes the delivery id and the time).

MLflow names an event `entity.action` (`model_version.created`); its REST
API spells it `{"entity": "MODEL_VERSION", "action": "CREATED"}`. MLflow
itself never tells anyone about stage transitions or approvals; modelog
decides them, so it names them in the same style (MODELOG_EVENTS) and a
receiver can subscribe to them beside MLflow's own (docs/mlflow-webhooks.md).
"""

import base64
import hashlib
import hmac
import json
from typing import Any

from modelog_contract.domain import events as e
from modelog_contract.domain.events import Event

# The events MLflow's own server emits for models (its prompt and budget
# events have no counterpart in modelog).
MLFLOW_EVENTS = ("registered_model.created", "model_version.created", "model_version_tag.set",
                 "model_version_tag.deleted", "model_version_alias.created", "model_version_alias.deleted")
# modelog's decisions MLflow does not emit, named as MLflow would.
MODELOG_EVENTS = ("model_version_stage.transitioned", "model_version_stage_transition.requested",
                  "model_version_approval.granted", "model_version_approval.denied")
EVENTS = MLFLOW_EVENTS + MODELOG_EVENTS

SIGNATURE_VERSION = "v1"


class UnknownEvent(ValueError):
    """An entity/action pair that is neither MLflow's nor modelog's."""


def event_name(entity: str, action: str) -> str:
    """`MODEL_VERSION`, `CREATED` (as MLflow's REST API spells them, any case) ->
    `model_version.created`; UnknownEvent if no such event is delivered."""
    name = f"{entity.lower()}.{action.lower()}"
    if name not in EVENTS:
        raise UnknownEvent(f"unknown webhook event {entity}.{action}: the events are {', '.join(EVENTS)}")
    return name


def wire_event(name: str) -> dict[str, str]:
    """`model_version.created` -> `{"entity": "MODEL_VERSION", "action": "CREATED"}`."""
    entity, action = name.split(".")
    return {"entity": entity.upper(), "action": action.upper()}


def _version_source(registered: e.VersionRegistered) -> str:
    """The source an MLflow client gave (the registrar's MLflow API keeps it in
    `extra["mlflow"]`), else where modelog stored the artifact."""
    given = registered.extra.get("mlflow")
    source = given.get("source") if isinstance(given, dict) else None
    return source if isinstance(source, str) else registered.artifact.uri


def mlflow_event(event: Event) -> tuple[str, dict[str, Any]] | None:
    """The MLflow-style event `event` is and its `data`, or None when it is none
    (a refused command, a model tag, a policy, metrics...)."""
    name, p = event.model, event.payload
    match p:
        case e.ModelCreated():
            return "registered_model.created", {"name": name, "tags": dict(p.tags),
                                                "description": p.description or None}
        case e.VersionRegistered():
            return "model_version.created", {
                "name": name, "version": str(p.version), "source": _version_source(p), "run_id": p.run_id,
                "tags": dict(p.tags), "description": p.description or None}
        case e.TagSet(version=int(version)):
            return "model_version_tag.set", {"name": name, "version": str(version), "key": p.key, "value": p.value}
        case e.TagDeleted(version=int(version)):
            return "model_version_tag.deleted", {"name": name, "version": str(version), "key": p.key}
        case e.AliasSet():
            return "model_version_alias.created", {"name": name, "alias": p.alias, "version": str(p.version)}
        case e.AliasDeleted():
            return "model_version_alias.deleted", {"name": name, "alias": p.alias}
        case e.StageChanged():
            return "model_version_stage.transitioned", {
                "name": name, "version": str(p.version), "from_stage": p.from_stage, "to_stage": p.to_stage,
                "reason": p.why, "request_id": p.request_id and str(p.request_id), "actor": event.actor.subject}
        case e.TransitionRequested():
            return "model_version_stage_transition.requested", {
                "name": name, "version": str(p.version), "request_id": str(p.request_id),
                "from_stage": p.from_stage, "to_stage": p.to_stage, "archive_existing_versions": p.archive_existing,
                "approvals_required": p.approvals_required, "comment": p.comment or None,
                "actor": event.actor.subject}
        case e.ApprovalGranted():
            return "model_version_approval.granted", {
                "name": name, "version": str(p.version), "request_id": str(p.request_id),
                "approvals": p.approvals, "approvals_required": p.approvals_required,
                "comment": p.comment or None, "actor": event.actor.subject}
        case e.ApprovalDenied():
            return "model_version_approval.denied", {
                "name": name, "version": str(p.version), "request_id": str(p.request_id),
                "comment": p.comment or None, "actor": event.actor.subject}
    return None


def envelope(name: str, data: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """What MLflow POSTs: the entity, the action, when (ISO 8601) and the data."""
    entity, action = name.split(".")
    return {"entity": entity, "action": action, "timestamp": timestamp, "data": data}


def delivery(event: Event) -> tuple[str, str] | None:
    """The MLflow-style event `event` is and the JSON body its webhooks are
    sent, stamped with the time the event happened (MLflow stamps the time it
    sends; a retried delivery here keeps its body, so its signature's input)."""
    found = mlflow_event(event)
    if found is None:
        return None
    return found[0], json.dumps(envelope(*found, event.occurred_at.isoformat()))


def signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """MLflow's `X-MLflow-Signature`: "v1," and the base64 HMAC-SHA256, keyed by
    the secret, of "<delivery id>.<timestamp>.<body>"."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """MLflow's delivery headers; no signature without a secret, as MLflow does."""
    sent = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": str(timestamp)}
    if secret:
        sent["X-MLflow-Signature"] = signature(secret, delivery_id, timestamp, body)
    return sent


# What the `test` endpoint sends: one made-up payload of each event's shape.
EXAMPLES: dict[str, dict[str, Any]] = {
    "registered_model.created": {"name": "example-model", "tags": {"team": "example"},
                                 "description": "an example registered model"},
    "model_version.created": {"name": "example-model", "version": "1", "source": "models:/m-example",
                              "run_id": "example-run", "tags": {"team": "example"},
                              "description": "an example model version"},
    "model_version_tag.set": {"name": "example-model", "version": "1", "key": "team", "value": "example"},
    "model_version_tag.deleted": {"name": "example-model", "version": "1", "key": "team"},
    "model_version_alias.created": {"name": "example-model", "alias": "champion", "version": "1"},
    "model_version_alias.deleted": {"name": "example-model", "alias": "champion"},
    "model_version_stage.transitioned": {
        "name": "example-model", "version": "1", "from_stage": "Staging", "to_stage": "Production",
        "reason": "promoted", "request_id": "00000000-0000-0000-0000-000000000000", "actor": "example-user"},
    "model_version_stage_transition.requested": {
        "name": "example-model", "version": "1", "request_id": "00000000-0000-0000-0000-000000000000",
        "from_stage": "Staging", "to_stage": "Production", "archive_existing_versions": True,
        "approvals_required": 1, "comment": None, "actor": "example-user"},
    "model_version_approval.granted": {
        "name": "example-model", "version": "1", "request_id": "00000000-0000-0000-0000-000000000000",
        "approvals": 1, "approvals_required": 1, "comment": "looks good", "actor": "example-reviewer"},
    "model_version_approval.denied": {
        "name": "example-model", "version": "1", "request_id": "00000000-0000-0000-0000-000000000000",
        "comment": "not yet", "actor": "example-reviewer"},
}
