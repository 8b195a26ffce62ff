"""The Python SDK: typed calls to the registry, clear exceptions.

Writes go to the registrar and come back once the projector has committed
their outcome; reads go to the projector, which serves them. Every refusal is
a ModelogError (or a subclass) carrying the registry's machine-readable code.

While the registry is briefly unavailable (a 503, a lost connection) a call
is sent again for up to `retry_for_s` (retrying.py). Every write carries an
Idempotency-Key, the caller's or a new one, so sending it again acts once.
"""

import contextlib
import functools
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast, get_args
from urllib.parse import quote
from uuid import uuid4

import httpx

from modelog.retrying import Retrying
from modelog.settings import ClientSettings

CHUNK = 1024 * 1024
MANIFEST_FORMAT = "modelog.manifest/1"  # the registry's tree manifests (registrar/manifest.py)
# The stages a version may be moved to (request_transition's `to_stage`).
TransitionStage = Literal["Staging", "Production", "Archived"]
TRANSITION_STAGES: tuple[str, ...] = get_args(TransitionStage)


class ModelogError(Exception):
    """The registry refused a request; `code` is the machine-readable reason."""

    def __init__(self, status: int, code: str, message: str, body: dict):
        super().__init__("\n  ".join([f"{status} {code}: {message}", *problem_lines(body)]))
        self.status, self.code, self.message, self.body = status, code, message, body

    @property
    def problems(self) -> list[str]:
        """Each part of the request the API could not take, and what it allows (a 422)."""
        return problem_lines(self.body)


def problem_lines(body: dict) -> list[str]:
    """`where: what is wrong` for each problem of an invalid_request body."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    return [f"{'.'.join(map(str, p.get('loc', [])))}: {p.get('msg', '')}" for p in error.get("problems", [])]


class NotFound(ModelogError):
    """No such model, version, alias or request (or it was deleted)."""


class Conflict(ModelogError):
    """The model moved on (version_conflict) or the change is already made."""


class Forbidden(ModelogError):
    """Not authenticated, or missing a permission (the code names which)."""


class Refused(ModelogError):
    """The decider refused the command: a gate failed, or the input is invalid."""


class StillPending(ModelogError):
    """The command is accepted for decision but has no outcome yet."""


class DigestMismatch(ModelogError):
    """Downloaded bytes do not hash to the version's sha256."""


def error_class(status: int) -> type[ModelogError]:
    if status in (404, 410):
        return NotFound
    if status in (409, 412):
        return Conflict
    if status in (401, 403):
        return Forbidden
    if 400 <= status < 500:
        return Refused
    return ModelogError


class Client:
    def __init__(self, registrar_url: str | None = None, projector_url: str | None = None,
                 timeout_s: float = 60, token: str | None = None, retry_for_s: float | None = None):
        """`retry_for_s`: how long a call keeps asking while the registry answers
        503 or cannot be reached (0: never asks again); MODELOG_RETRY_FOR_S, 60 s, if None."""
        settings = ClientSettings.from_environment()
        self.retrying = Retrying(settings.retry_for_s if retry_for_s is None else retry_for_s)
        token = token or settings.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.registrar = httpx.Client(base_url=registrar_url or settings.registrar_url,
                                      timeout=timeout_s, headers=headers)
        self.projector = httpx.Client(base_url=projector_url or settings.projector_url,
                                      timeout=timeout_s, headers=headers)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------

    def create_model(self, name: str, *, description: str = "", tags: dict[str, str] | None = None,
                     **write) -> dict:
        return self._write("POST", "/v1/models", {"name": name, "description": description,
                                                  "tags": tags or {}}, **write)

    def register_version(self, model: str, artifact: Path, *, run_id: str | None = None,
                         description: str = "", metrics: dict[str, float] | None = None,
                         params: dict[str, str] | None = None, tags: dict[str, str] | None = None,
                         dataset_uri: str | None = None, dataset_sha256: str | None = None,
                         model_card: str | None = None, signature: dict[str, Any] | None = None,
                         progress: Callable[[int, int], None] | None = None, **write) -> dict:
        """Upload the artifact, a file or a directory (a model directory with
        MLmodel, model.pkl, nested folders...), and register it as the model's
        next version, with its lineage (the dataset, the model card as
        Markdown, the signature).

        The digest is computed here and checked by the server (a directory's:
        of its manifest), so a corrupted upload is refused instead of
        registered. A directory holding a symbolic link or anything but
        regular files, or no file at all, is refused here (InvalidTree) before
        anything is sent. `progress(sent, total)` is called as the bytes go out."""
        artifact = Path(artifact)
        form = {"description": description, "metrics": json.dumps(metrics or {}),
                "params": json.dumps(params or {}), "tags": json.dumps(tags or {}),
                "signature": json.dumps(signature or {})}
        form.update({k: v for k, v in {"run_id": run_id, "dataset_uri": dataset_uri,
                                       "dataset_sha256": dataset_sha256, "model_card": model_card}.items() if v})
        files = tree_files(artifact) if artifact.is_dir() else [(artifact.name, artifact)]
        if artifact.is_dir():
            form.update(tree="true", sha256=manifest_sha256(files))
        else:
            form["sha256"] = file_sha256(artifact)
        total, headers = sum(path.stat().st_size for _, path in files), write_headers(**keyed(write))

        def upload() -> httpx.Response:  # each attempt reads the files from their start
            sent_before = 0
            with contextlib.ExitStack() as opened:
                parts = []
                for name, path in files:
                    raw: BinaryIO = opened.enter_context(path.open("rb"))
                    if progress:
                        # httpx streams anything with read(): a ProgressReader passes for the file it wraps.
                        report = functools.partial(_progress_from, progress, sent_before, total)
                        raw = cast(BinaryIO, ProgressReader(raw, total, report))
                        sent_before += path.stat().st_size
                    parts.append(("file", (name, raw, "application/octet-stream")))
                return self.registrar.post(f"/v1/models/{model}/versions", data=form, headers=headers, files=parts)

        return self._written(self.retrying.send(upload, f"registering a version of {model}"))

    def register_version_by_reference(self, model: str, uri: str, *, sha256: str | None = None,
                                      run_id: str | None = None, description: str = "",
                                      metrics: dict[str, float] | None = None,
                                      params: dict[str, str] | None = None,
                                      tags: dict[str, str] | None = None,
                                      dataset_uri: str | None = None, dataset_sha256: str | None = None,
                                      model_card: str | None = None, signature: dict[str, Any] | None = None,
                                      **write) -> dict:
        """Register an object already in S3 (s3://bucket/key); the registry reads and keeps a copy."""
        return self._write("POST", f"/v1/models/{model}/versions/by-reference", {
            "uri": uri, "sha256": sha256, "run_id": run_id, "description": description,
            "metrics": metrics or {}, "params": params or {}, "tags": tags or {}, "dataset_uri": dataset_uri,
            "dataset_sha256": dataset_sha256, "model_card": model_card, "signature": signature or {}}, **write)

    def update_model(self, model: str, description: str, **write) -> dict:
        return self._write("PATCH", f"/v1/models/{model}", {"description": description}, **write)

    def update_version(self, model: str, version: int, description: str, **write) -> dict:
        return self._write("PATCH", f"/v1/models/{model}/versions/{version}",
                           {"description": description}, **write)

    def set_tag(self, model: str, key: str, value: str, *, version: int | None = None, **write) -> dict:
        return self._write("PUT", f"{_scope(model, version)}/tags/{key}", {"value": value}, **write)

    def delete_tag(self, model: str, key: str, *, version: int | None = None, **write) -> dict:
        return self._write("DELETE", f"{_scope(model, version)}/tags/{key}", None, **write)

    def report_metrics(self, model: str, version: int, metrics: dict[str, float], **write) -> dict:
        return self._write("POST", f"/v1/models/{model}/versions/{version}/metrics",
                           {"metrics": metrics}, **write)

    def request_transition(self, model: str, version: int, to_stage: str, *, comment: str = "",
                           archive_existing: bool | None = None, **write) -> dict:
        """Move a version to a stage; if the policy wants approvals, the result
        has a `request_id` and the version waits. `archive_existing`: archive
        the versions already in that stage in the same decision (unsaid: on a
        move to Production only)."""
        body: dict = {"to_stage": to_stage, "comment": comment}
        if archive_existing is not None:
            body["archive_existing"] = archive_existing
        return self._write("POST", f"/v1/models/{model}/versions/{version}/transitions", body, **write)

    def approve(self, model: str, request_id: str, *, comment: str = "", **write) -> dict:
        return self._write("POST", f"/v1/models/{model}/transitions/{request_id}/approve",
                           {"comment": comment}, **write)

    def deny(self, model: str, request_id: str, *, comment: str = "", **write) -> dict:
        return self._write("POST", f"/v1/models/{model}/transitions/{request_id}/deny",
                           {"comment": comment}, **write)

    def rollback(self, model: str, version: int, *, comment: str = "", **write) -> dict:
        return self._write("POST", f"/v1/models/{model}/versions/{version}/rollback",
                           {"comment": comment}, **write)

    def set_alias(self, model: str, alias: str, version: int, *, protected: bool = False, **write) -> dict:
        return self._write("PUT", f"/v1/models/{model}/aliases/{alias}",
                           {"version": version, "protected": protected}, **write)

    def delete_alias(self, model: str, alias: str, **write) -> dict:
        return self._write("DELETE", f"/v1/models/{model}/aliases/{alias}", None, **write)

    def set_traffic_split(self, model: str, routes: dict[int, int], *, shadows: Iterable[int] = (),
                          comment: str = "", **write) -> dict:
        """Share `model`'s requests: `routes` maps each version (in Staging or
        Production) to its weight in percent, summing to 100; `shadows` get a
        copy of each request. Needs the operator role. {production: 100}
        removes a split."""
        body = {"routes": [{"version": v, "weight": w} for v, w in routes.items()], "shadows": list(shadows),
                "comment": comment}
        return self._write("PUT", f"/v1/models/{model}/traffic-split", body, **write)

    def report_serving(self, model: str, version: int, *, instance: str, since: datetime,
                       host: str | None = None, target: str | None = None, wait: bool = True, **write) -> dict:
        """Say that `instance` serves `version` of `model` since `since` (the
        server or operator role). The watchers call it when what they serve
        changes; refused for a version that does not exist or was deleted.
        `wait=False`: once the registrar accepted it for decision, without
        waiting for the outcome (a watcher must not wait on the registry)."""
        body = {"instance": instance, "version": version, "since": since.isoformat(), "host": host, "target": target}
        response = self.registrar.post(f"/v1/models/{model}/serving-reports", json=body, headers=write_headers(**write))
        return self._written(response) if wait else _result(response)

    def set_policy(self, model: str, policy: dict[str, Any], **write) -> dict:
        return self._write("PUT", f"/v1/models/{model}/policy", {"policy": policy}, **write)

    def delete_version(self, model: str, version: int, **write) -> dict:
        return self._write("DELETE", f"/v1/models/{model}/versions/{version}", None, **write)

    def delete_model(self, model: str, **write) -> dict:
        return self._write("DELETE", f"/v1/models/{model}", None, **write)

    def _write(self, method: str, path: str, body: dict | None, **write) -> dict:
        headers = write_headers(**keyed(write))
        return self._written(self.retrying.send(
            lambda: self.registrar.request(method, path, json=body, headers=headers), f"{method} {path}"))

    def _written(self, response: httpx.Response) -> dict:
        if response.status_code == 202:  # accepted for decision; the outcome comes later
            return self.wait_for_outcome(response.json()["status_url"])
        return _result(response)

    def wait_for_outcome(self, status_url: str, timeout_s: float = 120) -> dict:
        """Poll a command's status URL until its outcome is committed."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.retrying.send(lambda: self.registrar.get(status_url), "waiting for the outcome")
            if response.status_code != 404:
                outcome = _result(response)
                if not outcome["accepted"]:
                    raise Refused(422, outcome["reason"], outcome["message"], outcome)
                return {"command_id": outcome["command_id"], "status": "accepted", "model": outcome["model"],
                        "seq": outcome["last_seq"], "version": outcome["version"], "events": outcome["events"]}
            if time.monotonic() > deadline:
                raise StillPending(202, "outcome_pending", f"no outcome after {timeout_s:.0f}s", {})
            time.sleep(0.2)

    # -- reads ----------------------------------------------------------------

    def _read(self, path: str, **options: Any) -> Any:
        """The projector's answer to a GET, asked again while it is unavailable."""
        return _result(self.retrying.send(lambda: self.projector.get(path, **options), f"GET {path}"))

    def list_models(self, *, name: str | None = None, stage: str | None = None, tag: str | None = None,
                    page_size: int = 100) -> Iterator[dict]:
        """Every matching model, in name order, fetched a page at a time."""
        params = {k: v for k, v in {"name": name, "stage": stage, "tag": tag}.items() if v is not None}
        after = None
        while True:
            page = self._read("/v1/models", params={**params, "limit": page_size,
                                                   **({"after": after} if after else {})})
            yield from page["models"]
            if not (after := page["next"]):
                return

    def get_model(self, model: str) -> dict:
        return self._read(f"/v1/models/{model}")

    def list_versions(self, model: str) -> list[dict]:
        return self._read(f"/v1/models/{model}/versions")["versions"]

    def get_version(self, model: str, version: int) -> dict:
        return self._read(f"/v1/models/{model}/versions/{version}")

    def pending_transitions(self, model: str) -> list[dict]:
        return self._read(f"/v1/models/{model}/transitions")["pending"]

    def stage_history(self, model: str) -> list[dict]:
        return self._read(f"/v1/models/{model}/history")["changes"]

    def in_stage(self, model: str, stage: str) -> dict:
        return self._read(f"/v1/models/{model}/stages/{stage}")

    def by_alias(self, model: str, alias: str) -> dict:
        return self._read(f"/v1/models/{model}/aliases/{alias}")

    def traffic_split(self, model: str) -> dict:
        """The split in force: routes (version, weight, artifact) and shadows."""
        return self._read(f"/v1/models/{model}/traffic-split")

    def serving(self, model: str) -> dict:
        """What is live where: each instance's latest report, and the instances per version."""
        return self._read(f"/v1/models/{model}/serving")

    def serving_everywhere(self) -> Iterator[dict]:
        """Every instance's latest report across the models the token covers, a page at a time."""
        cursor: dict[str, str] = {}
        while True:
            page = self._read("/v1/serving", params=cursor)
            yield from page["instances"]
            if not (cursor := page["next"]):
                return

    def download(self, model: str, version: int, destination: Path,
                 progress: Callable[[int, int], None] | None = None) -> Path:
        """Write a version's artifact to `destination`: a file, or for a version
        registered as a tree, a directory holding every file of it. Every byte
        is checked against the version's sha256 (a tree's manifest first, then
        each file against the manifest): on a mismatch DigestMismatch is
        raised and nothing is left at `destination`. A tree's destination must
        not exist yet, or be an empty directory."""
        found = self.get_version(model, version)
        expected, destination = found["artifact_sha256"], Path(destination)
        if found.get("artifact_form") == "unverified":
            raise Conflict(409, "artifact_unverified", f"version {version} of {model} keeps its source "
                           f"{found['artifact_uri']!r} as given: the registry holds no copy of its files", {})
        if found.get("artifact_form") != "manifest":
            self._download_file(f"/v1/models/{model}/versions/{version}/artifact", expected, destination,
                                progress)
            return destination
        listed = self._download_bytes(f"/v1/models/{model}/versions/{version}/artifact", expected)
        files = manifest_files(listed, f"version {version} of {model}")
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise FileExistsError(f"{destination} exists and is not an empty directory: "
                                  f"version {version} of {model} is a tree of {len(files)} files")
        total, done = sum(f["size"] for f in files), 0
        destination.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the destination and renamed into place once every file checked out.
        staging = destination.parent / f".{destination.name}.{uuid4().hex[:8]}.partial"
        staging.mkdir()
        try:
            for f in files:
                target = staging.joinpath(*f["path"].split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                report = functools.partial(_progress_from, progress, done, total) if progress else None
                self._download_file(f"/v1/models/{model}/versions/{version}/files/{quote(f['path'])}",
                                    f["sha256"], target, report, what=f["path"])
                done += f["size"]
            if destination.exists():
                destination.rmdir()
            staging.rename(destination)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return destination

    def _download_bytes(self, path: str, expected: str) -> bytes:
        response = self.retrying.send(lambda: self.registrar.get(path), f"GET {path}")
        _raise_for(response)
        actual = hashlib.sha256(response.content).hexdigest()
        if actual != expected:
            raise DigestMismatch(0, "digest_mismatch", f"{path} hashes to {actual}, not {expected}", {})
        return response.content

    def _download_file(self, path: str, expected: str, destination: Path,
                       progress: Callable[[int, int], None] | None, what: str = "downloaded bytes") -> None:
        """Stream a file to `destination`; refused (and the file removed)
        unless its bytes hash to `expected`."""
        digest, done = hashlib.sha256(), 0
        try:
            with self.registrar.stream("GET", path) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                total = int(response.headers.get("content-length", 0))
                with destination.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            if digest.hexdigest() != expected:
                raise DigestMismatch(0, "digest_mismatch", f"{what} hash to {digest.hexdigest()}, not {expected}",
                                     {})
        except BaseException:
            destination.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        self.registrar.close()
        self.projector.close()

    def revise_model_card(self, model: str, version: int, model_card: str, *, summary: str, **write) -> dict:
        """Replace a version's model card (Markdown, 1 to 65,536 characters) with
        a new text; `summary` says what changed. Each revision stays in the
        trail with its author; an unchanged card is refused (card_unchanged)."""
        return self._write("PUT", f"/v1/models/{model}/versions/{version}/model-card",
                           {"model_card": model_card, "summary": summary}, **write)


class ProgressReader:
    """A file whose reads report progress (for upload progress bars)."""

    def __init__(self, raw, total: int, progress: Callable[[int, int], None]):
        self.raw, self.total, self.progress, self.sent = raw, total, progress, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.sent += len(chunk)
        self.progress(self.sent, self.total)
        return chunk

    def __getattr__(self, name):  # seek, tell, fileno, name: as the file has them
        return getattr(self.raw, name)


def keyed(write: dict[str, Any]) -> dict[str, Any]:
    """A write's options with an Idempotency-Key: the caller's, or a new one,
    so that sending it again (retrying.py) is the same command."""
    return write if write.get("idempotency_key") else {**write, "idempotency_key": str(uuid4())}


def write_headers(idempotency_key: str | None = None, if_match: int | None = None) -> dict[str, str]:
    headers = {}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"'
    return headers


def _scope(model: str, version: int | None) -> str:
    return f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")


class InvalidTree(ValueError):
    """A directory the registry would not take as a tree: said before anything is sent."""


def tree_files(root: Path) -> list[tuple[str, Path]]:
    """Every file under `root`, by its '/'-separated path inside it, in path
    order. Symbolic links and anything but regular files are refused: the
    registry stores files by their bytes, and a link's target is not part of
    the tree (copy the file in instead). Empty directories are not kept."""
    found = []
    for directory, subdirectories, names in os.walk(root):
        for name in sorted(subdirectories + names):
            path = Path(directory, name)
            inside = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise InvalidTree(f"{inside} in {root} is a symbolic link: the registry keeps regular files "
                                  "only; copy the file it points at into the directory instead")
            if name in names and not path.is_file():
                raise InvalidTree(f"{inside} in {root} is not a regular file: the registry keeps regular "
                                  "files only")
            if name in names:
                found.append((inside, path))
    if not found:
        raise InvalidTree(f"{root} holds no file: a tree needs at least one")
    return sorted(found)


def manifest_sha256(files: list[tuple[str, Path]]) -> str:
    """The digest of the manifest the registry writes for these files: canonical
    JSON (keys sorted, no spaces, UTF-8) of every file's path, size and sha256."""
    listed = [{"path": name, "sha256": file_sha256(path), "size": path.stat().st_size}
              for name, path in sorted(files)]
    document = json.dumps({"files": listed, "format": MANIFEST_FORMAT}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(document.encode()).hexdigest()


def manifest_files(document: bytes, what: str) -> list[dict[str, Any]]:
    """The files a downloaded manifest lists (its digest already checked),
    each path one that stays inside the directory it is written to."""
    try:
        parsed = json.loads(document)
        files: list[dict[str, Any]] = [
            {"path": str(f["path"]), "size": int(f["size"]), "sha256": str(f["sha256"])} for f in parsed["files"]]
    except (ValueError, KeyError, TypeError) as error:
        raise DigestMismatch(0, "invalid_manifest", f"the manifest of {what} cannot be read: {error}", {}) from None
    for f in files:
        segments = f["path"].split("/")
        if any(s in ("", ".", "..") for s in segments) or "\\" in f["path"] or "\x00" in f["path"]:
            raise DigestMismatch(0, "invalid_manifest", f"the manifest of {what} names {f['path']!r}, "
                                 "which is not a path inside the tree", {})
    return files


def _progress_from(progress: Callable[[int, int], None], before: int, total: int, done: int, _: int) -> None:
    """One file's progress as progress over all of them, `before` bytes came earlier."""
    progress(before + done, total)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _result(response: httpx.Response) -> dict:
    _raise_for(response)
    return response.json()


def _raise_for(response: httpx.Response) -> None:
    """The registry's refusal as a ModelogError; nothing for a success."""
    if response.is_success:
        return
    try:
        body = response.json()
        error = body.get("error", {})
    except ValueError:
        body, error = {}, {}
    raise error_class(response.status_code)(response.status_code, error.get("code", "http_error"),
                                            error.get("message", response.text), body)
