"""Where an MLflow version's files are read from: a directory on the team's
MLflow tracking server (its artifact proxy, /api/2.0/mlflow-artifacts) or
under an S3 prefix the registrar's credentials can read. Each tree lists its
files and streams one file's bytes to a sink (stored_trees.Tree); copying
them in is stored_trees.copy_in's job. A tree that is not there, or that we
may not read, says so with Unreadable; a tracking server that fails says so
with an ApiError 503 (a retry may succeed, so MLflow's client is right to retry)."""

import asyncio
import posixpath
from dataclasses import dataclass

import httpx

from modelog_platform.adapters.s3 import ArtifactStore, ObjectMissing
from modelog_platform.web import ApiError
from registrar.stored_trees import Sink

ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK = 1024 * 1024


class Unreadable(Exception):
    """modelog cannot read this source: the version keeps it as given, unverified."""


def _unavailable(url: str, why: object) -> ApiError:
    return ApiError(503, "tracking_server_unavailable", f"the MLflow tracking server failed at {url}: {why}")


class TrackingServer:
    """The team's tracking server, asked with the registrar's own identity
    (none: it is read as an anonymous client reads it)."""

    def __init__(self, base_url: str, http: httpx.AsyncClient):
        self.base_url, self.http = base_url.rstrip("/"), http

    async def get_json(self, endpoint: str, **params: str) -> dict:
        url = f"{self.base_url}{endpoint}"
        try:
            response = await self.http.get(url, params=params)
        except httpx.HTTPError as error:
            raise _unavailable(url, error) from None
        if response.status_code in (400, 401, 403, 404):
            raise Unreadable(f"{url} answered {response.status_code}: {response.text[:300]}")
        if response.status_code != 200:
            raise _unavailable(url, f"status {response.status_code}")
        return response.json()

    async def logged_model_artifacts(self, model_id: str) -> str:
        """Where a logged model's files are (models:/m-...)."""
        found = await self.get_json(f"/api/2.0/mlflow/logged-models/{model_id}")
        location = found.get("model", {}).get("info", {}).get("artifact_uri")
        if not location:
            raise Unreadable(f"the tracking server names no artifact location for logged model {model_id}")
        return location

    async def run_artifacts(self, run_id: str) -> str:
        """Where a run's files are (runs:/<run_id>/...)."""
        found = await self.get_json("/api/2.0/mlflow/runs/get", run_id=run_id)
        location = found.get("run", {}).get("info", {}).get("artifact_uri")
        if not location:
            raise Unreadable(f"the tracking server names no artifact location for run {run_id}")
        return location


@dataclass
class ProxiedTree:
    """A directory of the tracking server's artifact proxy (mlflow-artifacts:/<root>)."""

    server: TrackingServer
    root: str

    async def file_paths(self) -> list[str]:
        found: list[str] = []
        directories = [""]
        while directories:
            directory = directories.pop()
            listed = await self.server.get_json(ARTIFACTS_API, path=posixpath.join(self.root, directory).rstrip("/"))
            for entry in listed.get("files", []):
                path = posixpath.join(directory, entry["path"])
                (directories if entry.get("is_dir") else found).append(path)
        if not found:
            raise Unreadable(f"no files under mlflow-artifacts:/{self.root}")
        return found

    async def read(self, path: str, sink: Sink) -> None:
        url = f"{self.server.base_url}{ARTIFACTS_API}/{posixpath.join(self.root, path)}"
        try:
            async with self.server.http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _unavailable(url, f"status {response.status_code} for a file it listed")
                async for chunk in response.aiter_bytes(CHUNK):
                    await asyncio.to_thread(sink, chunk)
        except httpx.HTTPError as error:
            raise _unavailable(url, error) from None


@dataclass
class S3Tree:
    """Every object under s3://bucket/prefix/, or the one object s3://bucket/prefix."""

    store: ArtifactStore
    bucket: str
    prefix: str

    async def file_paths(self) -> list[str]:
        directory = self.prefix.rstrip("/") + "/" if self.prefix else ""
        try:
            keys = await asyncio.to_thread(lambda: list(self.store.objects_under(self.bucket, directory)))
        except ObjectMissing as missing:
            raise Unreadable(f"{missing} cannot be listed with the registry's credentials") from None
        if keys:
            return [key[len(directory):] for key, _ in keys]
        if self.prefix and not self.prefix.endswith("/"):
            # No directory of that name: perhaps one object, a tree of one file.
            parent, _, name = self.prefix.rpartition("/")
            self.prefix = parent
            return [name]
        raise Unreadable(f"no objects under s3://{self.bucket}/{self.prefix}")

    async def read(self, path: str, sink: Sink) -> None:
        key = posixpath.join(self.prefix, path) if self.prefix else path
        try:
            await asyncio.to_thread(self.store.read_object_into, self.bucket, key, sink, CHUNK)
        except ObjectMissing:
            raise Unreadable(f"s3://{self.bucket}/{key} cannot be read with the registry's credentials") from None
