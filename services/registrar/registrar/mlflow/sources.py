"""A model version's source, as MLflow's client names it (`models:/m-…`,
`runs:/…`, `mlflow-artifacts:/…`, `s3://…`, a path), turned into the artifact
modelog registers: the whole tree copied into modelog's content-addressed store
with a manifest, or, where modelog cannot read the source, the source as given
and the version marked unverified (docs/mlflow-artifacts.md).

A registered version is immutable: MLflow's source may change or vanish after
registration, modelog's copy does not, and every file of it is pinned by the
manifest's digest."""

import hashlib
import logging
from urllib.parse import urlparse

import httpx
from fastapi import Request
from minio.helpers import check_bucket_name

from modelog_contract.domain.types import Artifact
from modelog_platform.adapters.s3 import ArtifactStore
from registrar import manifest
from registrar.mlflow.trees import ProxiedTree, S3Tree, TrackingServer, Unreadable
from registrar.stored_trees import Tree, copy_in

log = logging.getLogger("modelog.registrar.mlflow")
TRACKING_TIMEOUT_S = 30.0


async def artifact_for(request: Request, source: str, run_id: str | None) -> Artifact:
    """The artifact a new version registers for `source`: its tree copied in,
    or, if modelog cannot read it, the source as given and unverified."""
    settings = request.app.state.settings
    http = request.app.state.tracking_http
    tracking = TrackingServer(settings.mlflow_tracking_uri, http) if settings.mlflow_tracking_uri else None
    try:
        tree = await tree_of(source, run_id, tracking, request.app.state.artifacts)
        return await copy_in(tree, request.app.state.artifacts, settings.max_upload_bytes)
    except (Unreadable, manifest.InvalidManifest) as why:  # a path no tree may hold is not read either
        log.info("registering %r unverified: %s", source, why)
        return unverified(source)


def tracking_client() -> httpx.AsyncClient:
    """The registrar's one client for the MLflow tracking server, made once:
    a client's TLS context loads the CA bundle, which took most of a
    registration's CPU when each registration made its own."""
    return httpx.AsyncClient(timeout=TRACKING_TIMEOUT_S)


def unverified(source: str) -> Artifact:
    """The source kept as given: nothing was read, so the digest is of its text."""
    return Artifact(uri=source, sha256=hashlib.sha256(source.encode()).hexdigest(), size=0, form="unverified")


async def tree_of(source: str, run_id: str | None, tracking: TrackingServer | None,
                  store: ArtifactStore) -> Tree:
    """The tree a source names, or Unreadable when modelog cannot read it."""
    parsed = urlparse(source)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise Unreadable(f"{source!r} names no bucket")
        return _s3_tree(store, parsed.netloc, parsed.path)
    if parsed.scheme not in ("models", "runs", "mlflow-artifacts"):
        raise Unreadable(f"modelog reads s3://, runs:/, models:/m-… and mlflow-artifacts: sources, not {source!r}")
    if tracking is None:
        raise Unreadable("no MLflow tracking server is configured (MODELOG_MLFLOW_TRACKING_URI)")
    if parsed.scheme == "mlflow-artifacts":
        return await _location_tree(source, tracking, store)
    if parsed.scheme == "runs":
        # runs:/<run_id>/<path>; the run may also come from the request's run_id
        found_run, _, path = parsed.path.lstrip("/").partition("/")
        location = await tracking.run_artifacts(parsed.netloc or found_run or run_id or "")
        return await _location_tree(_joined(location, path), tracking, store)
    model_id = parsed.path.strip("/") if not parsed.netloc else parsed.netloc
    if not model_id.startswith("m-") or "/" in model_id:
        raise Unreadable(f"{source!r} is not a logged model (models:/m-<id>)")
    return await _location_tree(await tracking.logged_model_artifacts(model_id), tracking, store)


def _s3_tree(store: ArtifactStore, bucket: str, path: str) -> S3Tree:
    """No bucket can have a name S3's rules refuse (`s3://x/…`): such a source
    is unreadable, and the version is registered unverified, not refused with a 5xx."""
    try:
        check_bucket_name(bucket)
    except ValueError:
        raise Unreadable(f"{bucket!r} is not a valid S3 bucket name") from None
    return S3Tree(store, bucket, path.strip("/"))


def _joined(location: str, path: str) -> str:
    return f"{location.rstrip('/')}/{path.strip('/')}" if path.strip("/") else location


async def _location_tree(location: str, tracking: TrackingServer, store: ArtifactStore) -> Tree:
    """The tree at an artifact location the tracking server gave (or the caller named)."""
    parsed = urlparse(location)
    if parsed.scheme == "s3" and parsed.netloc:
        return _s3_tree(store, parsed.netloc, parsed.path)
    if parsed.scheme != "mlflow-artifacts":
        raise Unreadable(f"the files are at {location!r}, which modelog cannot read")
    if parsed.netloc and parsed.netloc != urlparse(tracking.base_url).netloc:
        # Only the configured server is read: a source must not make the
        # registrar fetch from a host of the caller's choosing.
        raise Unreadable(f"{location!r} is on another server than MODELOG_MLFLOW_TRACKING_URI")
    root = parsed.path.strip("/")
    if any(segment in (".", "..") for segment in root.split("/")):
        raise Unreadable(f"{location!r} climbs out of the artifact root")
    return ProxiedTree(tracking, root)
