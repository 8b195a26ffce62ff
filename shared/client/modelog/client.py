"""The Python SDK: typed calls to the registry, clear exceptions.

Writes go to the registrar and come back once the projector has committed
their outcome; reads go to the projector, which serves them. Every refusal is
a ModelogError (or a subclass) carrying the registry's machine-readable code.
"""

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast, get_args

import httpx

from modelog.settings import ClientSettings

CHUNK = 1024 * 1024
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
                 timeout_s: float = 60, token: str | None = None):
        settings = ClientSettings.from_environment()
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
                         progress: Callable[[int, int], None] | None = None, **write) -> dict:
        """Upload the artifact and register it as the model's next version.

        The digest is computed here and checked by the server, so a corrupted
        upload is refused instead of registered. `progress(sent, total)` is
        called as the bytes go out."""
        artifact = Path(artifact)
        form = {"sha256": file_sha256(artifact), "description": description,
                "metrics": json.dumps(metrics or {}), "params": json.dumps(params or {}),
                "tags": json.dumps(tags or {})}
        if run_id:
            form["run_id"] = run_id
        with artifact.open("rb") as raw:
            # httpx streams anything with read(): a ProgressReader passes for the file it wraps.
            body = cast(BinaryIO, ProgressReader(raw, artifact.stat().st_size, progress)) if progress else raw
            response = self.registrar.post(
                f"/v1/models/{model}/versions", data=form, headers=write_headers(**write),
                files={"file": (artifact.name, body, "application/octet-stream")})
        return self._written(response)

    def register_version_by_reference(self, model: str, uri: str, *, sha256: str | None = None,
                                      run_id: str | None = None, description: str = "",
                                      metrics: dict[str, float] | None = None,
                                      params: dict[str, str] | None = None,
                                      tags: dict[str, str] | None = None, **write) -> dict:
        """Register an object already in S3 (s3://bucket/key); the registry reads and keeps a copy."""
        return self._write("POST", f"/v1/models/{model}/versions/by-reference", {
            "uri": uri, "sha256": sha256, "run_id": run_id, "description": description,
            "metrics": metrics or {}, "params": params or {}, "tags": tags or {}}, **write)

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

    def set_policy(self, model: str, policy: dict[str, Any], **write) -> dict:
        return self._write("PUT", f"/v1/models/{model}/policy", {"policy": policy}, **write)

    def delete_version(self, model: str, version: int, **write) -> dict:
        return self._write("DELETE", f"/v1/models/{model}/versions/{version}", None, **write)

    def delete_model(self, model: str, **write) -> dict:
        return self._write("DELETE", f"/v1/models/{model}", None, **write)

    def _write(self, method: str, path: str, body: dict | None, **write) -> dict:
        response = self.registrar.request(method, path, json=body, headers=write_headers(**write))
        return self._written(response)

    def _written(self, response: httpx.Response) -> dict:
        if response.status_code == 202:  # accepted for decision; the outcome comes later
            return self.wait_for_outcome(response.json()["status_url"])
        return _result(response)

    def wait_for_outcome(self, status_url: str, timeout_s: float = 120) -> dict:
        """Poll a command's status URL until its outcome is committed."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.registrar.get(status_url)
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

    def list_models(self, *, name: str | None = None, stage: str | None = None, tag: str | None = None,
                    page_size: int = 100) -> Iterator[dict]:
        """Every matching model, in name order, fetched a page at a time."""
        params = {k: v for k, v in {"name": name, "stage": stage, "tag": tag}.items() if v is not None}
        after = None
        while True:
            page = _result(self.projector.get("/v1/models", params={**params, "limit": page_size,
                                                                    **({"after": after} if after else {})}))
            yield from page["models"]
            if not (after := page["next"]):
                return

    def get_model(self, model: str) -> dict:
        return _result(self.projector.get(f"/v1/models/{model}"))

    def list_versions(self, model: str) -> list[dict]:
        return _result(self.projector.get(f"/v1/models/{model}/versions"))["versions"]

    def get_version(self, model: str, version: int) -> dict:
        return _result(self.projector.get(f"/v1/models/{model}/versions/{version}"))

    def pending_transitions(self, model: str) -> list[dict]:
        return _result(self.projector.get(f"/v1/models/{model}/transitions"))["pending"]

    def stage_history(self, model: str) -> list[dict]:
        return _result(self.projector.get(f"/v1/models/{model}/history"))["changes"]

    def in_stage(self, model: str, stage: str) -> dict:
        return _result(self.projector.get(f"/v1/models/{model}/stages/{stage}"))

    def by_alias(self, model: str, alias: str) -> dict:
        return _result(self.projector.get(f"/v1/models/{model}/aliases/{alias}"))

    def download(self, model: str, version: int, destination: Path,
                 progress: Callable[[int, int], None] | None = None) -> Path:
        """Stream a version's artifact to a file; refused (and the file removed)
        unless the bytes hash to the version's sha256."""
        expected = self.get_version(model, version)["artifact_sha256"]
        destination, digest, done = Path(destination), hashlib.sha256(), 0
        with self.registrar.stream("GET", f"/v1/models/{model}/versions/{version}/artifact") as response:
            if not response.is_success:
                response.read()
                _result(response)
            total = int(response.headers.get("content-length", 0))
            with destination.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        if digest.hexdigest() != expected:
            destination.unlink(missing_ok=True)
            raise DigestMismatch(0, "digest_mismatch",
                                 f"downloaded bytes hash to {digest.hexdigest()}, not {expected}", {})
        return destination

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


def write_headers(idempotency_key: str | None = None, if_match: int | None = None) -> dict[str, str]:
    headers = {}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"'
    return headers


def _scope(model: str, version: int | None) -> str:
    return f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _result(response: httpx.Response) -> dict:
    if response.is_success:
        return response.json()
    try:
        body = response.json()
        error = body.get("error", {})
    except ValueError:
        body, error = {}, {}
    raise error_class(response.status_code)(response.status_code, error.get("code", "http_error"),
                                            error.get("message", response.text), body)
