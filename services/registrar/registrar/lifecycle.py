"""The lifecycle commands of the decider as HTTP writes: one small body model
per command, unknown fields refused, the rest taken from the request."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from modelog_contract.domain import commands as c
from modelog_contract.domain.commands import InstanceId, ModelCard, RevisionSummary, ServingTarget
from modelog_contract.domain.monitoring import Evidence
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.splits import Route
from modelog_contract.domain.types import AliasName, Stage
from modelog_platform.web import VersionNumber
from registrar.denials import publishes
from registrar.writes import Write

router = APIRouter(prefix="/v1", tags=["lifecycle"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewModel(Strict):
    name: str
    description: str = ""
    tags: dict[str, str] = {}


class Description(Strict):
    description: str


class ModelCardRevision(Strict):
    model_card: ModelCard  # Markdown, the whole new text: 1 to 65,536 characters
    summary: RevisionSummary  # what changed, for the trail


class TagValue(Strict):
    value: str = Field(max_length=5000)


class Metrics(Strict):
    metrics: dict[str, float] = Field(min_length=1)


class TransitionRequest(Strict):
    to_stage: Stage
    # Archive the versions already in the target stage (Staging or Production)
    # in the same decision; unsaid: on a move to Production only.
    archive_existing: bool | None = None
    comment: str = ""
    imported_from: str | None = Field(None, min_length=1, max_length=1000)  # an admin's import (docs/mlflow-import.md)


class Comment(Strict):
    comment: str = ""


class AliasTarget(Strict):
    version: int
    protected: bool = False


class PolicyBody(Strict):
    policy: Policy


class TrafficSplitBody(Strict):
    routes: list[Route] = Field(min_length=1, max_length=100)
    shadows: list[int] = Field([], max_length=10)
    comment: str = ""
    evidence: Evidence | None = None  # the sentinel's: the window and rule that asked for it


class RollbackBody(Comment):
    evidence: Evidence | None = None  # as TrafficSplitBody's


class ServingReport(Strict):
    instance: InstanceId  # the serving instance, e.g. hostname-pid
    version: int
    since: datetime  # when the instance swapped the version in, on its own clock
    host: str | None = Field(None, min_length=1, max_length=255)
    target: ServingTarget | None = None  # what it follows: stage:Production, alias:champion, split:...


@router.post("/models", status_code=201, **publishes(c.CreateModel))
async def create_model(body: NewModel, write: Write):
    return await write.submit(
        write.command(c.CreateModel, body.name, description=body.description, tags=body.tags), created=True)


@router.patch("/models/{name}", **publishes(c.UpdateModel))
async def update_model(name: str, body: Description, write: Write):
    return await write.submit(write.command(c.UpdateModel, name, description=body.description))


@router.delete("/models/{name}", **publishes(c.DeleteModel))
async def delete_model(name: str, write: Write):
    return await write.submit(write.command(c.DeleteModel, name))


@router.patch("/models/{name}/versions/{version}", **publishes(c.UpdateVersion))
async def update_version(name: str, version: VersionNumber, body: Description, write: Write):
    return await write.submit(write.command(c.UpdateVersion, name, version=version,
                                            description=body.description))


@router.put("/models/{name}/versions/{version}/model-card", **publishes(c.ReviseModelCard))
async def revise_model_card(name: str, version: VersionNumber, body: ModelCardRevision, write: Write):
    """Replace the version's model card with a new text: a revision of its own
    in the trail, by a publisher or a reviewer; an unchanged card is refused."""
    return await write.submit(write.command(c.ReviseModelCard, name, version=version,
                                            model_card=body.model_card, summary=body.summary))


@router.delete("/models/{name}/versions/{version}", **publishes(c.DeleteVersion))
async def delete_version(name: str, version: VersionNumber, write: Write):
    return await write.submit(write.command(c.DeleteVersion, name, version=version))


@router.put("/models/{name}/tags/{key}", **publishes(c.SetTag))
async def set_model_tag(name: str, key: str, body: TagValue, write: Write):
    return await write.submit(write.command(c.SetTag, name, key=key, value=body.value))


@router.delete("/models/{name}/tags/{key}", **publishes(c.DeleteTag))
async def delete_model_tag(name: str, key: str, write: Write):
    return await write.submit(write.command(c.DeleteTag, name, key=key))


@router.put("/models/{name}/versions/{version}/tags/{key}", **publishes(c.SetTag))
async def set_version_tag(name: str, version: VersionNumber, key: str, body: TagValue, write: Write):
    return await write.submit(write.command(c.SetTag, name, version=version, key=key, value=body.value))


@router.delete("/models/{name}/versions/{version}/tags/{key}", **publishes(c.DeleteTag))
async def delete_version_tag(name: str, version: VersionNumber, key: str, write: Write):
    return await write.submit(write.command(c.DeleteTag, name, version=version, key=key))


@router.post("/models/{name}/versions/{version}/metrics", **publishes(c.ReportMetrics))
async def report_metrics(name: str, version: VersionNumber, body: Metrics, write: Write):
    return await write.submit(write.command(c.ReportMetrics, name, version=version, metrics=body.metrics))


@router.post("/models/{name}/versions/{version}/transitions", **publishes(c.RequestTransition))
async def request_transition(name: str, version: VersionNumber, body: TransitionRequest, write: Write):
    """Move a version to a stage. Where the policy wants approvals, the answer
    carries the pending request's id and the version stays where it is."""
    return await write.submit(write.command(
        c.RequestTransition, name, version=version, to_stage=body.to_stage,
        archive_existing=body.archive_existing, comment=body.comment, imported_from=body.imported_from))


@router.post("/models/{name}/transitions/{request_id}/approve", **publishes(c.ApproveTransition))
async def approve_transition(name: str, request_id: UUID, write: Write,
                             body: Annotated[Comment, Body()] = Comment()):
    return await write.submit(write.command(c.ApproveTransition, name, request_id=request_id,
                                            comment=body.comment))


@router.post("/models/{name}/transitions/{request_id}/deny", **publishes(c.DenyTransition))
async def deny_transition(name: str, request_id: UUID, write: Write,
                          body: Annotated[Comment, Body()] = Comment()):
    return await write.submit(write.command(c.DenyTransition, name, request_id=request_id,
                                            comment=body.comment))


@router.post("/models/{name}/versions/{version}/rollback", **publishes(c.Rollback))
async def rollback(name: str, version: VersionNumber, write: Write,
                   body: Annotated[RollbackBody, Body()] = RollbackBody()):
    """Put an archived version back into Production, archiving the current one."""
    return await write.submit(write.command(c.Rollback, name, version=version, comment=body.comment,
                                            evidence=body.evidence))


@router.put("/models/{name}/traffic-split", **publishes(c.SetTrafficSplit))
async def set_traffic_split(name: str, body: TrafficSplitBody, write: Write):
    """Share the model's requests between Staging and Production versions (an
    operator's decision under policy); Production alone at 100 removes a split."""
    return await write.submit(write.command(c.SetTrafficSplit, name, routes=body.routes, shadows=body.shadows,
                                            comment=body.comment, evidence=body.evidence))


@router.post("/models/{name}/serving-reports", **publishes(c.ReportServing))
async def report_serving(name: str, body: ServingReport, write: Write):
    """A serving instance says which version it serves and since when (the
    server or operator role): a fact, recorded unless the version is unknown or deleted."""
    return await write.submit(write.command(c.ReportServing, name, instance=body.instance, version=body.version,
                                            since=body.since, host=body.host, target=body.target))


@router.put("/models/{name}/aliases/{alias}", **publishes(c.SetAlias))
async def set_alias(name: str, alias: AliasName, body: AliasTarget, write: Write):
    return await write.submit(write.command(c.SetAlias, name, alias=alias, version=body.version,
                                            protected=body.protected))


@router.delete("/models/{name}/aliases/{alias}", **publishes(c.DeleteAlias))
async def delete_alias(name: str, alias: AliasName, write: Write):
    return await write.submit(write.command(c.DeleteAlias, name, alias=alias))


@router.put("/models/{name}/policy", **publishes(c.SetPolicy))
async def set_policy(name: str, body: PolicyBody, write: Write):
    return await write.submit(write.command(c.SetPolicy, name, policy=body.policy))
