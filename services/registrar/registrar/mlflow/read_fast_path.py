"""MLflow's hot reads, answered in front of FastAPI from the registrar's model
cache (docs/decisions/0011-mlflow-reads-from-a-cache.md), as the projector
answers serving lookups (decision 0004).

Why: serving code and training pipelines ask get-latest-versions, get by
alias and get-download-uri over and over. Through the routes each cost the
registrar's whole FastAPI path plus two projector requests with the caller's
token verified again; here a read is a cached token, a batched seq check and,
while the model has not changed, an answer encoded once.

All is well when the caller's token was verified before and is still valid,
it grants `reader` on the model, the request is plainly formed (each
parameter once; a JSON body for POST) and the answer is a 200. Anything
else, a new token, a refusal, a deleted model, a missing alias, a bad stage,
an unreachable projector, goes on to the routes, which answer it with
MLflow's errors; so the fast path only ever gives answers the routes give.
"""

import json
from collections.abc import Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from modelog_platform.identity import permissions
from modelog_platform.identity.tokens import bearer_token
from registrar.mlflow import PREFIXES, read_answers
from registrar.mlflow.errors import MlflowError
from registrar.mlflow.model_cache import CachedModel
from registrar.mlflow.requests import stage, version_number

MAX_BODY = 64 * 1024  # a get-latest-versions body is a name and a few stages
MAX_KEPT_REQUESTS = 4096  # distinct requests whose parsing is kept; all forgotten at once when full
MAX_KEPT_REQUEST = 2048  # bytes of query and body: a longer request is parsed each time

# path below the prefix -> (methods, the parameters it needs, the answer from (model, versions, parameters))
Answer = Callable[[CachedModel, dict], dict]
READS: dict[str, tuple[frozenset[str], tuple[str, ...], Answer]] = {
    "/registered-models/get-latest-versions": (
        frozenset({"GET", "POST"}), ("name",),
        lambda m, p: read_answers.latest_versions(m.model, m.versions, p["stages"])),
    "/registered-models/alias": (
        frozenset({"GET"}), ("name", "alias"), lambda m, p: read_answers.by_alias(m.model, m.versions, p["alias"])),
    "/registered-models/get": (
        frozenset({"GET"}), ("name",), lambda m, p: read_answers.registered_model(m.model, m.versions)),
    "/model-versions/get": (
        frozenset({"GET"}), ("name", "version"),
        lambda m, p: read_answers.model_version(m.model, m.versions, p["version"])),
    "/model-versions/get-download-uri": (
        frozenset({"GET"}), ("name", "version"),
        lambda m, p: read_answers.download_uri(m.model, m.versions, p["version"])),
}
ROUTES = {prefix + path: read for prefix in PREFIXES for path, read in READS.items()}


def encoded(answer: dict) -> bytes:
    """As FastAPI's JSONResponse encodes the routes' answers."""
    return json.dumps(answer, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def first_values(headers: list[tuple[bytes, bytes]], names: tuple[bytes, ...]) -> dict[bytes, bytes]:
    """Those headers' values; a repeated header's first, as Starlette reads it."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in names and name not in found:
            found[name] = value
    return found


def parameters(query: bytes, body: dict | None) -> dict | None:
    """The request's parameters, the stages and version checked and made
    canonical; None when the request is anything but plainly formed."""
    if body is not None:
        name, stages = body.get("name"), body.get("stages", [])
        if not isinstance(name, str) or not isinstance(stages, list) or not all(isinstance(s, str) for s in stages):
            return None
        found: dict = {"name": name, "stages": stages}
    else:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        found = {k: v for k, v in pairs if k != "stages"}
        if len(found) != len([k for k, _ in pairs if k != "stages"]):
            return None  # a parameter given twice: the route decides which counts
        found["stages"] = [v for k, v in pairs if k == "stages"]
    try:
        # The answer depends on the set of stages only: so does the key its encoding is kept under.
        found["stages"] = sorted({stage(s) for s in found["stages"]})
        if "version" in found:
            found["version"] = version_number(found["version"])
    except MlflowError:
        return None
    return found


def plain_request(path: str, raw: bytes | None, query: bytes, needed: tuple[str, ...]) -> tuple[dict, tuple] | None:
    """The parameters of a plainly formed request (`raw`: a POST's JSON body)
    and the key its answer is kept under in the model's answers; None when it
    is anything but plain."""
    body = None
    if raw is not None:
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
    params = parameters(query, body)
    if params is None or any(not isinstance(params.get(k), str | int) for k in needed):
        return None
    return params, (path.rpartition("/mlflow")[2], tuple(params["stages"]), params.get("alias"), params.get("version"))


class MlflowReadFastPath:
    def __init__(self, app: FastAPI):
        self.app, self.state = app, app.state
        # Serving code asks the same few reads over and over: each one's parsing
        # (a pure function of its bytes) is kept, not done again per request.
        self.parsed: dict[tuple, tuple[dict, tuple] | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if read is None or scope["method"] not in read[0]:
            await self.app(scope, receive, send)
            return
        raw, receive = await self._body(scope, receive)
        answer = await self.answer(scope, raw, read)
        if answer is None:
            await self.app(scope, receive, send)
            return
        scope["route_template"] = scope["path"]  # for the request metrics: MLflow's paths hold no names
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(answer)).encode()), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    async def _body(self, scope: Scope, receive: Receive) -> tuple[bytes | None, Receive]:
        """A POST's body (None: too long to be plain), and a `receive` that
        gives the routes the same body if the request goes on to them."""
        if scope["method"] != "POST":
            return b"", receive
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None, _replay([message])
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > MAX_BODY and more:
                return None, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": True}], receive)
        raw = b"".join(chunks)
        return raw, _replay([{"type": "http.request", "body": raw, "more_body": False}], receive)

    async def answer(self, scope: Scope, raw: bytes | None, read: tuple) -> bytes | None:
        """The encoded answer, or None to leave the request to the routes."""
        _, needed, answer_of = read
        tokens = getattr(self.state, "verified_tokens", None)  # None until the app has started
        cache = getattr(self.state, "mlflow_models", None)
        headers = first_values(scope["headers"], (b"authorization", b"content-type"))
        authorization = headers.get(b"authorization")
        token = authorization and bearer_token(authorization.decode("latin-1"))
        identity = token and tokens and tokens.cached(token)
        if not identity or cache is None or raw is None:
            return None
        if scope["method"] == "POST" and not headers.get(b"content-type", b"").startswith(b"application/json"):
            return None
        request = (scope["path"], scope["method"], scope["query_string"], raw)
        parsed = self.parsed.get(request)
        if parsed is None and request not in self.parsed:
            parsed = plain_request(scope["path"], raw if scope["method"] == "POST" else None, scope["query_string"],
                                   needed)
            if len(scope["query_string"]) + len(raw) <= MAX_KEPT_REQUEST:
                if len(self.parsed) >= MAX_KEPT_REQUESTS:
                    self.parsed.clear()
                self.parsed[request] = parsed
        if parsed is None:
            return None
        params, key = parsed
        name = params["name"]
        if permissions.authorize(identity, permissions.READER, name) is not None:
            return None
        try:
            model = await cache.get(name)
        except Exception:  # the projector unreachable: the routes say so in MLflow's words
            return None
        if model is None:
            return None
        if (cached := model.answers.get(key)) is not None:
            return cached
        try:
            found = encoded(answer_of(model, params))
        except MlflowError:
            return None
        model.answers[key] = found
        return found


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}
    return receive
