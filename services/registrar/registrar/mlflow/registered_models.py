"""MLflow's registered-models endpoints over modelog: each write one command
through the registrar's write path, each read from the projector's read
models, every answer in MLflow's shapes (docs/mlflow.md)."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request

from modelog_contract.domain import commands as c
from modelog_platform.identity.http import Caller
from registrar.denials import publishes
from registrar.mlflow import read_answers, reading, search, shapes
from registrar.mlflow.requests import MlflowBody, Tag, alias, invalid, search_terms, stage, tag_key, tags, version_number
from registrar.mlflow.writing import decided
from registrar.writes import Write

router = APIRouter(prefix="/registered-models")
MAX_SEARCH_RESULTS = 1000


class NewModel(MlflowBody):
    name: str
    tags: list[Tag] = []
    description: str = ""


class Named(MlflowBody):
    name: str


class Description(MlflowBody):
    name: str
    description: str = ""


class Rename(MlflowBody):
    name: str
    new_name: str


class TagSet(MlflowBody):
    name: str
    key: str
    value: str = ""


class TagKey(MlflowBody):
    name: str
    key: str


class AliasSet(MlflowBody):
    name: str
    alias: str
    version: str


class AliasKey(MlflowBody):
    name: str
    alias: str


class LatestVersions(MlflowBody):
    name: str
    stages: list[str] = []


async def registered_model(request: Request, name: str) -> dict:
    return read_answers.registered_model(*await reading.model_with_versions(request, name))["registered_model"]


@router.post("/create", **publishes(c.CreateModel))
async def create(body: NewModel, write: Write):
    outcome = await decided(write, write.command(c.CreateModel, body.name, description=body.description,
                                                 tags=tags(body.tags)))
    return {"registered_model": shapes.registered_model(outcome["state"]["model"], [])}


@router.get("/get")
async def get(request: Request, caller: Caller, name: str):
    return {"registered_model": await registered_model(request, name)}


@router.patch("/update", **publishes(c.UpdateModel))
async def update(body: Description, write: Write):
    await decided(write, write.command(c.UpdateModel, body.name, description=body.description))
    return {"registered_model": await registered_model(write.request, body.name)}


@router.delete("/delete", **publishes(c.DeleteModel))
async def delete(body: Named, write: Write):
    await decided(write, write.command(c.DeleteModel, body.name))
    return {}


@router.post("/rename")
async def rename(body: Rename, request: Request, caller: Caller):
    """A model's name is the key of its event stream and its audit trail: a
    renamed model would be a new stream with none of its history. modelog
    refuses, and says what to do instead (docs/mlflow.md)."""
    await reading.live_model(request, body.name)
    raise invalid(
        f"modelog does not rename models: a model's name is the key of its event stream, its audit trail and "
        f"its policy, so {body.name!r} keeps its name and its whole history. To carry on under "
        f"{body.new_name!r}, create that model and register the versions you need from their sources; "
        f"{body.name!r} stays readable, or delete it to retire its name.", "rename_unsupported")


@router.get("/search")
async def search_models(request: Request, caller: Caller, filter: str | None = None,
                        max_results: Annotated[int, Query()] = 100,
                        order_by: Annotated[list[str] | None, Query()] = None,
                        page_token: str | None = None):
    comparisons, order = search_terms(filter, order_by, page_token, max_results, MAX_SEARCH_RESULTS,
                                      search.REGISTERED_MODELS, search.MODEL_ORDER, search.MODEL_DEFAULT_ORDER)
    # Filter and order on the model rows; the versions are fetched for the page only.
    candidates = [shapes.registered_model(row, []) for row in await reading.all_models(request)]
    chosen = search.ordered([m for m in candidates if search.matches(m, comparisons)], order)
    found, next_token = search.page(chosen, page_token, max_results)
    versions = await asyncio.gather(*(reading.versions(request, m["name"]) for m in found))
    answer: dict = {"registered_models": [
        {**m, "latest_versions": shapes.latest_per_stage(v), "aliases": shapes.aliases_of(v)}
        for m, v in zip(found, versions, strict=True)]}
    if next_token:
        answer["next_page_token"] = next_token
    return answer


async def latest_versions(request: Request, name: str, stages: list[str]) -> dict:
    for s in stages:
        stage(s)  # a bad stage is refused before the model is read, as MLflow's server does
    return read_answers.latest_versions(*await reading.model_with_versions(request, name), stages)


@router.post("/get-latest-versions")
async def get_latest_versions(body: LatestVersions, request: Request, caller: Caller):
    return await latest_versions(request, body.name, body.stages)


@router.get("/get-latest-versions")
async def get_latest_versions_by_query(request: Request, caller: Caller, name: str,
                                       stages: Annotated[list[str] | None, Query()] = None):
    return await latest_versions(request, name, stages or [])


@router.post("/set-tag", **publishes(c.SetTag))
async def set_tag(body: TagSet, write: Write):
    await decided(write, write.command(c.SetTag, body.name, key=tag_key(body.key), value=body.value))
    return {}


@router.delete("/delete-tag", **publishes(c.DeleteTag))
async def delete_tag(body: TagKey, write: Write):
    await decided(write, write.command(c.DeleteTag, body.name, key=tag_key(body.key)))
    return {}


@router.post("/alias", **publishes(c.SetAlias))
async def set_alias(body: AliasSet, write: Write):
    await decided(write, write.command(c.SetAlias, body.name, alias=alias(body.alias),
                                       version=version_number(body.version)))
    return {}


@router.delete("/alias", **publishes(c.DeleteAlias))
async def delete_alias(body: AliasKey, write: Write):
    await decided(write, write.command(c.DeleteAlias, body.name, alias=body.alias))
    return {}


@router.get("/alias")
async def get_by_alias(request: Request, caller: Caller, name: str, alias: str):
    return read_answers.by_alias(*await reading.model_with_versions(request, name), alias)
