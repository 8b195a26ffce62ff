"""Events: facts, named in the past tense. Each is one envelope with a typed payload.

Events are never rewritten: a change of shape gets a new schema_version and an
upcaster (upcasters.py), so old events keep replaying.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from modelog_contract.domain.monitoring import Evidence
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.reasons import Reason
from modelog_contract.domain.rules import RuleResult
from modelog_contract.domain.splits import Route
from modelog_contract.domain.types import Actor, AliasName, Frozen, ModelName, Sha256, Stage, VersionFacts


class ModelCreated(Frozen):
    type: Literal["ModelCreated"] = "ModelCreated"
    description: str = ""
    tags: dict[str, str] = {}


class VersionRegistered(VersionFacts):
    type: Literal["VersionRegistered"] = "VersionRegistered"
    version: int = Field(ge=1)
    extra: dict[str, Any] = {}


class ModelUpdated(Frozen):
    type: Literal["ModelUpdated"] = "ModelUpdated"
    description: str


class VersionUpdated(Frozen):
    type: Literal["VersionUpdated"] = "VersionUpdated"
    version: int
    description: str


class ModelCardRevised(Frozen):
    """The version's model card as it reads from now on, whole, and what the
    revision changed in its author's words."""

    type: Literal["ModelCardRevised"] = "ModelCardRevised"
    version: int
    model_card: str
    summary: str


class TagSet(Frozen):
    type: Literal["TagSet"] = "TagSet"
    version: int | None = None
    key: str
    value: str


class TagDeleted(Frozen):
    type: Literal["TagDeleted"] = "TagDeleted"
    version: int | None = None
    key: str


class MetricsReported(Frozen):
    type: Literal["MetricsReported"] = "MetricsReported"
    version: int
    metrics: dict[str, float]


class TransitionRequested(Frozen):
    type: Literal["TransitionRequested"] = "TransitionRequested"
    request_id: UUID
    version: int
    from_stage: Stage
    to_stage: Stage
    archive_existing: bool
    approvals_required: int
    rule_results: tuple[RuleResult, ...]
    comment: str = ""


class ApprovalGranted(Frozen):
    type: Literal["ApprovalGranted"] = "ApprovalGranted"
    request_id: UUID
    version: int
    approvals: int  # valid approvals including this one
    approvals_required: int
    comment: str = ""


class ApprovalDenied(Frozen):
    type: Literal["ApprovalDenied"] = "ApprovalDenied"
    request_id: UUID
    version: int
    comment: str = ""


# "imported": a stage another registry recorded, reproduced by an admin's import.
StageChangeWhy = Literal["promoted", "archived-by-promotion", "rollback", "imported"]


class WithEvidence(Frozen):
    """A decision the sentinel asked for carries its monitoring evidence. Events
    without it are stored without the field, so the bytes (and hashes) of
    events written before it existed are the bytes written now."""

    evidence: Evidence | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_evidence(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        fields: dict[str, Any] = handler(self)
        if fields.get("evidence") is None:
            fields.pop("evidence", None)
        return fields


class StageChanged(WithEvidence):
    type: Literal["StageChanged"] = "StageChanged"
    version: int
    from_stage: Stage
    to_stage: Stage
    why: StageChangeWhy
    request_id: UUID | None = None
    rule_results: tuple[RuleResult, ...] = ()


class AliasSet(Frozen):
    type: Literal["AliasSet"] = "AliasSet"
    alias: AliasName
    version: int
    previous_version: int | None = None
    protected: bool = False


class AliasDeleted(Frozen):
    type: Literal["AliasDeleted"] = "AliasDeleted"
    alias: AliasName
    version: int


class TrafficSplitSet(WithEvidence):
    """The model's requests shared between `routes` from now on, copies sent to
    `shadows`; `production_version` was in Production when it was decided. The
    rule results are the decision's evidence: stages, weights, canary share."""

    type: Literal["TrafficSplitSet"] = "TrafficSplitSet"
    routes: tuple[Route, ...]
    shadows: tuple[int, ...] = ()
    production_version: int | None = None
    rule_results: tuple[RuleResult, ...] = ()
    comment: str = ""


class ServingReported(Frozen):
    """An instance serves `version` since `since` (its own clock), following
    `target`. Reports decide nothing: the model's state ignores them and the
    projector keeps the latest per instance ("what is live where")."""

    type: Literal["ServingReported"] = "ServingReported"
    instance: str
    version: int
    since: datetime
    host: str | None = None
    target: str | None = None


class PolicySet(Frozen):
    type: Literal["PolicySet"] = "PolicySet"
    policy: Policy


class VersionDeleted(Frozen):
    """A tombstone: the version's facts stay in the log; it can never be promoted."""

    type: Literal["VersionDeleted"] = "VersionDeleted"
    version: int


class ModelDeleted(Frozen):
    type: Literal["ModelDeleted"] = "ModelDeleted"


class CommandRejected(Frozen):
    """A refusal is a fact too: the trail shows attempts, not only successes."""

    type: Literal["CommandRejected"] = "CommandRejected"
    command_type: str
    reason: Reason
    message: str
    rule_results: tuple[RuleResult, ...] = ()


EventPayload = Annotated[
    ModelCreated | VersionRegistered | ModelUpdated | VersionUpdated | ModelCardRevised | TagSet | TagDeleted
    | MetricsReported | TransitionRequested | ApprovalGranted | ApprovalDenied | StageChanged
    | AliasSet | AliasDeleted | TrafficSplitSet | ServingReported | PolicySet | VersionDeleted | ModelDeleted
    | CommandRejected,
    Field(discriminator="type"),
]


class CommandPosition(Frozen):
    """Where the decided command sits in modelog.commands. The promoter resumes
    each partition right after the last position its own events record."""

    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class EventSignature(Frozen):
    """The log writer's Ed25519 signature over the event's hash (see modelog_contract.signing)."""

    key_id: Sha256
    value: str  # base64 of the 64-byte signature


class Event(Frozen):
    """The envelope every fact travels in; `hash` chains it to the model's
    previous event, and `signature` proves the promoter wrote it."""

    event_id: UUID
    type: str
    schema_version: int = 1
    model: ModelName
    seq: int = Field(ge=1)
    prev_hash: Sha256
    hash: Sha256
    occurred_at: datetime
    command_id: UUID
    actor: Actor
    # True on the last event of its command's decision, so a reader knows when
    # an outcome is whole (a decision may span several events).
    closes_decision: bool = True
    command_position: CommandPosition | None = None
    payload: EventPayload
    # Added by the writer once the hash is known; neither is part of what is hashed.
    signature: EventSignature | None = None

    @model_validator(mode="after")
    def _type_names_payload(self) -> "Event":
        if self.type != self.payload.type:
            raise ValueError(f"envelope type {self.type!r} != payload type {self.payload.type!r}")
        return self
