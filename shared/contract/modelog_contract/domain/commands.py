"""Commands: intent, named as verbs. The promoter decides them one model at a time."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from modelog_contract.domain.monitoring import Evidence
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.splits import Route
from modelog_contract.domain.types import Actor, AliasName, Frozen, ModelName, Stage, VersionFacts

TagKey = Annotated[str, Field(min_length=1, max_length=250)]
# A model card is Markdown a reader reads whole; the limit keeps each revision's
# event (which carries the card whole) far below the broker's message size.
MODEL_CARD_MAX_CHARS = 65_536
ModelCard = Annotated[str, Field(min_length=1, max_length=MODEL_CARD_MAX_CHARS)]
# What a revision changed, in a line or two: the trail shows it beside the author.
RevisionSummary = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"\S")]


class CommandBase(Frozen):
    command_id: UUID
    model: ModelName
    actor: Actor
    # Decide takes its clock from here, so deciding again yields the same events.
    issued_at: datetime
    # Compare-and-set: refused with version_conflict unless the model is at this seq.
    expected_seq: int | None = None


class CreateModel(CommandBase):
    type: Literal["CreateModel"] = "CreateModel"
    description: str = ""
    tags: dict[str, str] = {}


class RegisterVersion(CommandBase, VersionFacts):
    """Register the next version; creates the model first if it does not exist."""

    type: Literal["RegisterVersion"] = "RegisterVersion"
    extra: dict[str, Any] = {}


class UpdateModel(CommandBase):
    type: Literal["UpdateModel"] = "UpdateModel"
    description: str


class UpdateVersion(CommandBase):
    type: Literal["UpdateVersion"] = "UpdateVersion"
    version: int
    description: str


class ReviseModelCard(CommandBase):
    """A new text for a version's model card (a reviewer's fairness results,
    say): a fact of its own, so the trail keeps every revision and who made it."""

    type: Literal["ReviseModelCard"] = "ReviseModelCard"
    version: int
    model_card: ModelCard
    summary: RevisionSummary


class SetTag(CommandBase):
    """A tag on the model (version None) or on one version."""

    type: Literal["SetTag"] = "SetTag"
    version: int | None = None
    key: TagKey
    value: str = Field(max_length=5000)


class DeleteTag(CommandBase):
    type: Literal["DeleteTag"] = "DeleteTag"
    version: int | None = None
    key: TagKey


class ReportMetrics(CommandBase):
    """Evaluation results for a version, merged into what it already has."""

    type: Literal["ReportMetrics"] = "ReportMetrics"
    version: int
    metrics: dict[str, float] = Field(min_length=1)


class RequestTransition(CommandBase):
    type: Literal["RequestTransition"] = "RequestTransition"
    version: int
    to_stage: Stage
    # Moving a version into Staging or Production and archiving the versions
    # already there are one decision (MLflow's archive_existing_versions): no
    # reader sees zero or two Production versions. None: archive on a move to
    # Production only, what most callers mean.
    archive_existing: bool | None = None
    comment: str = ""
    # Set by an admin's import: the registry (and where in it) that recorded
    # this stage. The move is reproduced, not decided here: no gate or approval
    # stands in its way, and its StageChanged says "imported" (decider.py).
    imported_from: str | None = Field(None, min_length=1, max_length=1000)


class ApproveTransition(CommandBase):
    type: Literal["ApproveTransition"] = "ApproveTransition"
    request_id: UUID
    comment: str = ""


class DenyTransition(CommandBase):
    type: Literal["DenyTransition"] = "DenyTransition"
    request_id: UUID
    comment: str = ""


class Rollback(CommandBase):
    """Archived -> Production, archiving whatever is in Production now."""

    type: Literal["Rollback"] = "Rollback"
    version: int
    comment: str = ""
    # Set by the sentinel: the monitoring window and rule that asked for it.
    evidence: Evidence | None = None


class SetTrafficSplit(CommandBase):
    """Share the model's requests between versions in Staging or Production
    (weights in percent, summing to 100), and send copies to `shadows`."""

    type: Literal["SetTrafficSplit"] = "SetTrafficSplit"
    routes: tuple[Route, ...] = Field(min_length=1, max_length=100)  # 100 positive weights sum to 100 at most
    shadows: tuple[int, ...] = Field((), max_length=10)
    comment: str = Field("", max_length=5000)
    evidence: Evidence | None = None  # as Rollback's


# Who serves: an instance id (hostname-pid by default in the SDK's watchers),
# where it runs, and what it follows ("stage:Production", "alias:champion",
# "split:1=90,2=10"). Short, since every report carries them.
InstanceId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
ServingTarget = Annotated[str, Field(min_length=1, max_length=500)]


class ReportServing(CommandBase):
    """A serving instance says which version it serves, and since when: a fact
    about the world, refused only if the version does not exist or was deleted."""

    type: Literal["ReportServing"] = "ReportServing"
    instance: InstanceId
    version: int
    since: datetime
    host: str | None = Field(None, min_length=1, max_length=255)
    target: ServingTarget | None = None


class SetAlias(CommandBase):
    type: Literal["SetAlias"] = "SetAlias"
    alias: AliasName
    version: int
    protected: bool = False


class DeleteAlias(CommandBase):
    type: Literal["DeleteAlias"] = "DeleteAlias"
    alias: AliasName


class SetPolicy(CommandBase):
    type: Literal["SetPolicy"] = "SetPolicy"
    policy: Policy


class DeleteVersion(CommandBase):
    type: Literal["DeleteVersion"] = "DeleteVersion"
    version: int


class DeleteModel(CommandBase):
    type: Literal["DeleteModel"] = "DeleteModel"


Command = Annotated[
    CreateModel | RegisterVersion | UpdateModel | UpdateVersion | ReviseModelCard | SetTag | DeleteTag
    | ReportMetrics | RequestTransition | ApproveTransition | DenyTransition | Rollback | SetTrafficSplit
    | ReportServing | SetAlias | DeleteAlias | SetPolicy | DeleteVersion | DeleteModel,
    Field(discriminator="type"),
]
