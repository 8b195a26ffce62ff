"""modelog's read models in MLflow's shapes: a model row and its version rows
as the projector answers them become MLflow's RegisteredModel and ModelVersion
JSON (versions as strings, millisecond timestamps, tags and aliases as lists).

What MLflow says of a version and modelog's read model has no column for (the
source as the caller gave it, run_link, the MLflow logged model id) rides in
version tags under MLFLOW_FACTS_PREFIX: the log keeps them with the version,
modelog's native API shows them, and here they become MLflow's own fields and
leave the tag list."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

STAGES = ("None", "Staging", "Production", "Archived")
MLFLOW_FACTS_PREFIX = "modelog.mlflow."
SOURCE_TAG = MLFLOW_FACTS_PREFIX + "source"
RUN_LINK_TAG = MLFLOW_FACTS_PREFIX + "run_link"
MODEL_ID_TAG = MLFLOW_FACTS_PREFIX + "model_id"
RESERVED_TAG_PREFIX = "modelog."  # tags MLflow callers may not set: modelog keeps facts there
# What ModelVersion.status_message says of a version whose source modelog could not read.
UNVERIFIED_STATUS_MESSAGE = ("modelog could not read this version's source, so it holds no copy of its files: "
                             "they are unverified and may change or vanish where they are")


def millis(iso: str) -> int:
    """A read model's ISO timestamp as MLflow's milliseconds since the epoch."""
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def stage_of(text: str) -> str | None:
    """MLflow's stage names are case-insensitive on the way in; None: no such stage."""
    return next((s for s in STAGES if s.lower() == text.strip().lower()), None)


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(tags.items()) if not k.startswith(MLFLOW_FACTS_PREFIX)]


def facts_as_tags(source: str, run_link: str, model_id: str) -> dict[str, str]:
    """The MLflow facts a new version keeps in its tags; empty ones are left out."""
    facts = {SOURCE_TAG: source, RUN_LINK_TAG: run_link, MODEL_ID_TAG: model_id}
    return {k: v for k, v in facts.items() if v}


def model_version(row: Mapping[str, Any]) -> dict[str, Any]:
    """A version row (GET /v1/models/{name}/versions/{n}) as MLflow's ModelVersion."""
    tags = row.get("tags") or {}
    registered = millis(row["registered_at"])
    shape: dict[str, Any] = {
        "name": row["model"],
        "version": str(row["version"]),
        "creation_timestamp": registered,
        "last_updated_timestamp": millis(row["updated_at"]) if row.get("updated_at") else registered,
        "user_id": row["registered_by"],
        "current_stage": row["stage"],
        "description": row.get("description") or "",
        "source": tags.get(SOURCE_TAG) or row["artifact_uri"],
        "run_id": row.get("run_id") or "",
        "status": "READY",
        "status_message": UNVERIFIED_STATUS_MESSAGE if row["artifact_form"] == "unverified" else "",
        "tags": tag_list(tags),
        "run_link": tags.get(RUN_LINK_TAG, ""),
        "aliases": sorted(row.get("aliases") or []),
    }
    if model_id := tags.get(MODEL_ID_TAG):
        shape["model_id"] = model_id
    return shape


def live(versions: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [v for v in versions if not v.get("deleted")]


def latest_per_stage(versions: Iterable[Mapping[str, Any]], stages: Iterable[str] = STAGES) -> list[dict]:
    """The highest live version in each of `stages` that has one, as ModelVersions,
    in MLflow's order: stages as the versions, oldest first, first reach them."""
    wanted, latest = set(stages), {}
    for row in sorted(live(versions), key=lambda v: v["version"]):
        latest[row["stage"]] = row  # a stage keeps its first place, its newest version
    return [model_version(row) for stage, row in latest.items() if stage in wanted]


def aliases_of(versions: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The model's aliases, as MLflow lists them on a RegisteredModel."""
    aliases = sorted((alias, v["version"]) for v in live(versions) for alias in v.get("aliases") or [])
    return [{"alias": alias, "version": str(number)} for alias, number in aliases]


def registered_model(model: Mapping[str, Any], versions: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A model row and all its version rows as MLflow's RegisteredModel."""
    versions = list(versions)
    return {
        "name": model["name"],
        "creation_timestamp": millis(model["created_at"]),
        "last_updated_timestamp": millis(model["updated_at"]),
        "description": model.get("description") or "",
        "latest_versions": latest_per_stage(versions),
        "tags": tag_list(model.get("tags") or {}),
        "aliases": aliases_of(versions),
    }
