"""The Python SDK: typed calls to the registrar (writes) and the projector (reads)."""

import hashlib
import json
import time
from pathlib import Path

import httpx


class ModelogError(Exception):
    """The registry refused a request; `code` is the machine-readable reason."""

    def __init__(self, status: int, code: str, message: str, body: dict):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body = status, code, message, body


class Client:
    def __init__(self, registrar_url: str = "http://127.0.0.1:8000",
                 projector_url: str = "http://127.0.0.1:8002", timeout_s: float = 60):
        self.registrar = httpx.Client(base_url=registrar_url, timeout=timeout_s)
        self.projector = httpx.Client(base_url=projector_url, timeout=timeout_s)

    def register_version(self, model: str, artifact: Path, *, run_id: str | None = None,
                         description: str = "", metrics: dict[str, float] | None = None,
                         params: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> dict:
        """Upload the artifact and register it as the model's next version.

        The digest is computed here and checked by the server, so a corrupted
        upload is refused instead of registered."""
        artifact = Path(artifact)
        form = {"sha256": file_sha256(artifact), "description": description,
                "metrics": json.dumps(metrics or {}), "params": json.dumps(params or {}),
                "tags": json.dumps(tags or {})}
        if run_id:
            form["run_id"] = run_id
        with artifact.open("rb") as body:
            response = self.registrar.post(
                f"/v1/models/{model}/versions", data=form,
                files={"file": (artifact.name, body, "application/octet-stream")})
        if response.status_code == 202:  # accepted for decision; the outcome comes later
            return self.wait_for_outcome(response.json()["status_url"])
        return _result(response)

    def wait_for_outcome(self, status_url: str, timeout_s: float = 120) -> dict:
        """Poll a command's status URL until its outcome is committed."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.registrar.get(status_url)
            if response.status_code != 404 or time.monotonic() > deadline:
                outcome = _result(response)
                if not outcome["accepted"]:
                    raise ModelogError(409, outcome["reason"], outcome["message"], outcome)
                return {"command_id": outcome["command_id"], "status": "accepted", "model": outcome["model"],
                        "seq": outcome["last_seq"], "version": outcome["version"]}
            time.sleep(0.2)

    def get_model(self, model: str) -> dict:
        return _result(self.projector.get(f"/v1/models/{model}"))

    def list_versions(self, model: str) -> list[dict]:
        return _result(self.projector.get(f"/v1/models/{model}/versions"))["versions"]

    def get_version(self, model: str, version: int) -> dict:
        return _result(self.projector.get(f"/v1/models/{model}/versions/{version}"))

    def close(self) -> None:
        self.registrar.close()
        self.projector.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1024 * 1024):
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
    raise ModelogError(response.status_code, error.get("code", "http_error"),
                       error.get("message", response.text), body)
