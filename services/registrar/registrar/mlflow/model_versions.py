"""MLflow's model-versions endpoints over modelog: each write one command
through the registrar's write path (a new version's source becomes its
artifact through sources.artifact_for), each read from the projector's read
models, every answer in MLflow's shapes. A transition is one RequestTransition
decision: archiving the others comes with it, a gate refusal lists its rules,
and one that waits for approvals is an error naming the request
(docs/mlflow.md)."""

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from modelog_contract.domain import commands as c
from modelog_platform.identity import permissions
from modelog_platform.identity.http import Caller, refused
from registrar.denials import publishes
from registrar.mlflow import artifacts, reading, search, shapes, sources
from registrar.mlflow.requests import MlflowBody, Tag, invalid, search_terms, stage, tag_key, tags, version_number
from registrar.mlflow.writing import decided
from registrar.writes import Write, valid_name

router = APIRouter(prefix="/model-versions")
MAX_SEARCH_RESULTS = 200_000
DEFAULT_SEARCH_RESULTS = 10_000
# The stages whose other versions a move may archive, in MLflow as in modelog's decider.
ARCHIVING_STAGES = ("Staging", "Production")


def download_uri(version_row: Mapping[str, Any]) -> str:
    """Where MLflow's client downloads a version's files from. `version_row`
    is the projector's version read model (artifact_uri, artifact_sha256,
    artifact_size, tags...): modelog's digest-checked copy, served by this
    registrar with MLflow's artifact-proxy protocol (docs/mlflow-artifacts.md)."""
    return artifacts.download_uri(version_row)


class NewVersion(MlflowBody):
    name: str
    source: str
    run_id: str = ""
    tags: list[Tag] = []
    run_link: str = ""
    description: str = ""
    model_id: str = ""


class VersionKey(MlflowBody):
    name: str
    version: str


class Description(MlflowBody):
    name: str
    version: str
    description: str = ""


class Transition(MlflowBody):
    name: str
    version: str
    stage: str
    archive_existing_versions: bool = False


class TagSet(MlflowBody):
    name: str
    version: str
    key: str
    value: str = ""


class TagKey(MlflowBody):
    name: str
    version: str
    key: str


async def model_version(request: Request, name: str, version: int) -> dict:
    return shapes.model_version(await reading.live_version(request, name, version))


@router.post("/create", **publishes(c.RegisterVersion))
async def create(body: NewVersion, write: Write):
    """MLflow registers versions of a model created first (modelog would create
    it on the fly: MLflow's client expects RESOURCE_DOES_NOT_EXIST instead)."""
    given_tags = tags(body.tags)
    # The name and the caller's permission, before any source is read.
    write.request.state.command_model = valid_name(body.name)
    refused(permissions.authorize(write.caller, permissions.BY_COMMAND[c.RegisterVersion], body.name))
    await reading.live_model(write.request, body.name)
    artifact = await sources.artifact_for(write.request, body.source, body.run_id or None)
    facts = shapes.facts_as_tags(body.source, body.run_link, body.model_id)
    outcome = await decided(write, write.command(
        c.RegisterVersion, body.name, artifact=artifact, run_id=body.run_id or None,
        description=body.description, tags={**given_tags, **facts},
        extra={"mlflow": {"source": body.source, "run_link": body.run_link, "model_id": body.model_id}}))
    return {"model_version": shapes.model_version(outcome["state"]["version"])}


@router.get("/get")
async def get(request: Request, caller: Caller, name: str, version: str):
    return {"model_version": await model_version(request, name, version_number(version))}


@router.patch("/update", **publishes(c.UpdateVersion))
async def update(body: Description, write: Write):
    number = version_number(body.version)
    await decided(write, write.command(c.UpdateVersion, body.name, version=number, description=body.description))
    return {"model_version": await model_version(write.request, body.name, number)}


@router.delete("/delete", **publishes(c.DeleteVersion))
async def delete(body: VersionKey, write: Write):
    await decided(write, write.command(c.DeleteVersion, body.name, version=version_number(body.version)))
    return {}


@router.post("/transition-stage", **publishes(c.RequestTransition))
async def transition_stage(body: Transition, write: Write):
    """One RequestTransition: the move and the archiving of the stage's other
    versions are one decision, under the model's policy."""
    number, to_stage = version_number(body.version), stage(body.stage)
    if body.archive_existing_versions and to_stage not in ARCHIVING_STAGES:
        raise invalid(f"Model version transition cannot archive existing model versions because '{to_stage}' "
                      f"is not an Active stage. Valid stages are {', '.join(ARCHIVING_STAGES)}",
                      "archive_not_supported")
    outcome = await decided(write, write.command(c.RequestTransition, body.name, version=number,
                                                 to_stage=to_stage,
                                                 archive_existing=body.archive_existing_versions))
    return {"model_version": shapes.model_version(outcome["state"]["version"])}


@router.post("/set-tag", **publishes(c.SetTag))
async def set_tag(body: TagSet, write: Write):
    await decided(write, write.command(c.SetTag, body.name, version=version_number(body.version),
                                       key=tag_key(body.key), value=body.value))
    return {}


@router.delete("/delete-tag", **publishes(c.DeleteTag))
async def delete_tag(body: TagKey, write: Write):
    await decided(write, write.command(c.DeleteTag, body.name, version=version_number(body.version),
                                       key=tag_key(body.key)))
    return {}


@router.get("/get-download-uri")
async def get_download_uri(request: Request, caller: Caller, name: str, version: str):
    row = await reading.live_version(request, name, version_number(version))
    return {"artifact_uri": download_uri(row)}


def named_model(comparisons: tuple[search.Comparison, ...]) -> str | None:
    """The one model a filter names with `name = '...'`: only its versions need reading."""
    return next((str(x.value) for x in comparisons if x.kind == "attribute" and x.key == "name" and x.op == "="),
                None)


@router.get("/search")
async def search_versions(request: Request, caller: Caller, filter: str | None = None,
                          max_results: Annotated[int, Query()] = DEFAULT_SEARCH_RESULTS,
                          order_by: Annotated[list[str] | None, Query()] = None,
                          page_token: str | None = None):
    comparisons, order = search_terms(filter, order_by, page_token, max_results, MAX_SEARCH_RESULTS,
                                      search.MODEL_VERSIONS, search.VERSION_ORDER, search.VERSION_DEFAULT_ORDER)
    if (only := named_model(comparisons)) is not None:
        row = await reading.model_row(request, only)
        names = [only] if row is not None and not row.get("deleted") else []
    else:
        names = [m["name"] for m in await reading.all_models(request)]
    rows = await asyncio.gather(*(reading.versions(request, name) for name in names))
    candidates = [shapes.model_version(v) for versions in rows for v in shapes.live(versions)]
    chosen = search.ordered([v for v in candidates if search.matches(v, comparisons)], order)
    found, next_token = search.page(chosen, page_token, max_results)
    answer: dict = {"model_versions": found}
    if next_token:
        answer["next_page_token"] = next_token
    return answer
