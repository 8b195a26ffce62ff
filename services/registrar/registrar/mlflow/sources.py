"""A model version's source, as MLflow's client names it (`models:/m-…`,
`runs:/…`, `mlflow-artifacts:/…`, `s3://…`, a path), turned into the artifact
modelog registers: the whole tree copied into modelog's content-addressed store
with a manifest, or, where modelog cannot read the source, the source as given
and the version marked unverified (docs/mlflow.md)."""

from fastapi import Request

from modelog_contract.domain.types import Artifact
from registrar.mlflow.errors import MlflowError


async def artifact_for(request: Request, source: str, run_id: str | None) -> Artifact:
    """The artifact a new version registers for `source`."""
    raise MlflowError("INVALID_PARAMETER_VALUE", f"modelog cannot read the source {source!r} yet",
                      "source_unreadable")
