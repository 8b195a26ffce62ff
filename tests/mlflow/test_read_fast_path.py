"""MLflow's read fast path against the running stack's projector: it answers
a known caller's hot reads without FastAPI, with the very status and body the
routes give; it leaves everything else (new tokens, refusals, deleted models
and versions, missing aliases, bad stages, odd requests) to the routes; and a
write is seen by the next read, because every read checks the model's seq."""

import asyncio
import json
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from mlflow import MlflowClient

from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.http import install_verifier
from modelog_platform.web import install_error_handlers
from registrar import mlflow
from registrar.mlflow.model_cache import ModelCache
from registrar.mlflow.read_fast_path import MlflowReadFastPath
from registrar.outcomes import OutcomeClient
from tests.counted_app import Counted
from tests.e2e.helpers import bearer, token_for, unique

pytestmark = pytest.mark.engines
API = "/api/2.0/mlflow"


@pytest.fixture
async def fast(stack):
    """The fast path in front of MLflow's routes, reading the stack's projector
    as the registrar does (its own reads as a reader of every model)."""
    app = FastAPI()
    install_error_handlers(app)
    mlflow.install(app)
    install_verifier(app, DevIssuer.local().verifier())
    app.state.outcomes = OutcomeClient(stack.url("projector"))
    app.state.outcomes.http.headers.update(bearer("modelog-registrar", "reader"))
    app.state.mlflow_models = ModelCache(app.state.outcomes.http)
    counted = Counted(app)
    yield MlflowReadFastPath(counted), counted  # type: ignore[arg-type]
    await app.state.mlflow_models.close()
    await app.state.outcomes.close()


@pytest.fixture
def registry(stack, monkeypatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for("mlflow-fast", "publisher", "operator", "admin"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return MlflowClient(tracking_uri="http://127.0.0.1:9", registry_uri=stack.url("registrar"))


@pytest.fixture
def model(registry) -> str:
    """v1 archived, v2 in Staging behind @champion, v3 deleted."""
    name = unique("fast-reads")
    registry.create_registered_model(name, tags={"team": "fraud"}, description="hot")
    for _ in range(3):
        registry.create_model_version(name, f"file:///nowhere/{uuid4().hex}")
    registry.transition_model_version_stage(name, "1", "Staging")
    registry.transition_model_version_stage(name, "2", "Staging", archive_existing_versions=True)
    registry.set_registered_model_alias(name, "champion", "2")
    registry.delete_model_version(name, "3")
    return name


async def ask(app, method: str, path: str, token: str, **kwargs) -> tuple[int, str, object]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registrar") as http:
        response = await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    return response.status_code, response.headers.get("content-type", ""), response.json()


def hot_reads(name: str) -> list[tuple[str, str, dict]]:
    reads = [
        ("GET", "/registered-models/get-latest-versions", {"params": {"name": name}}),
        ("GET", "/registered-models/get-latest-versions", {"params": [("name", name), ("stages", "staging")]}),
        ("POST", "/registered-models/get-latest-versions", {"json": {"name": name, "stages": ["Archived"]}}),
        ("POST", "/registered-models/get-latest-versions", {"json": {"name": name, "extra": 1}}),
        ("GET", "/registered-models/alias", {"params": {"name": name, "alias": "champion"}}),
        ("GET", "/registered-models/get", {"params": {"name": name}}),
        ("GET", "/model-versions/get", {"params": {"name": name, "version": "2"}}),
        ("GET", "/model-versions/get-download-uri", {"params": {"name": name, "version": "1"}}),
    ]
    return [(method, prefix + path, kwargs) for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
            for method, path, kwargs in reads]


async def test_a_known_callers_hot_reads_skip_fastapi_and_answer_as_the_routes_do(fast, model):
    app, counted = fast
    known = token_for("mlflow-reader", "reader")
    await ask(app, "GET", f"{API}/registered-models/get", known, params={"name": model})  # verified once
    for method, path, kwargs in hot_reads(model):
        routed = await ask(app, method, path, token_for(f"new-{uuid4().hex[:6]}", "reader"), **kwargs)
        before = counted.calls
        answered = await ask(app, method, path, known, **kwargs)
        assert counted.calls == before, f"{method} {path} {kwargs} went on to the routes"
        assert answered == routed
        assert answered[0] == 200


async def test_everything_but_a_plain_answer_goes_on_to_the_routes(fast, model, registry):
    app, counted = fast
    known = token_for("mlflow-reader", "reader")
    elsewhere = token_for("mlflow-elsewhere", "reader", grants=("other-*",))
    gone = unique("fast-gone")
    registry.create_registered_model(gone)
    registry.delete_registered_model(gone)
    for token in (known, elsewhere):
        await ask(app, "GET", f"{API}/registered-models/get", token, params={"name": model})
    cases = [
        (known, "GET", "/registered-models/get", {"params": {"name": gone}}),  # deleted model
        (known, "GET", "/registered-models/get", {"params": {"name": unique("never")}}),
        (known, "GET", "/registered-models/alias", {"params": {"name": model, "alias": "nobody"}}),
        (known, "GET", "/registered-models/get-latest-versions", {"params": [("name", model), ("stages", "Live")]}),
        (known, "GET", "/model-versions/get", {"params": {"name": model, "version": "3"}}),  # deleted version
        (known, "GET", "/model-versions/get", {"params": {"name": model, "version": "v2"}}),
        (known, "POST", "/registered-models/get-latest-versions",
         {"content": json.dumps({"name": model}), "headers": {"Content-Type": "text/plain"}}),
        (known, "POST", "/registered-models/get-latest-versions", {"json": {"name": model, "stages": "Staging"}}),
        (known, "GET", "/model-versions/get-download-uri", {"params": {"version": "1"}}),  # no name
        (elsewhere, "GET", "/registered-models/get", {"params": {"name": model}}),  # grants that do not cover it
    ]
    for token, method, path, kwargs in cases * 2:  # the second time, each request's parsing is the one kept
        before = counted.calls
        headers = {**kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registrar") as http:
            response = await http.request(method, API + path, headers=headers,
                                          **{k: v for k, v in kwargs.items() if k != "headers"})
        assert counted.calls == before + 1, f"{method} {path} {kwargs} was answered by the fast path"
        assert response.status_code >= 400 and "error_code" in response.json()

    # A parameter given twice is the routes' to read: they answer it, the fast path does not.
    before = counted.calls
    twice = await ask(app, "GET", f"{API}/model-versions/get", known,
                      params=[("name", model), ("name", model), ("version", "2")])
    assert counted.calls == before + 1 and twice[0] == 200


async def test_a_write_is_seen_by_the_next_fast_read(fast, model, registry):
    app, counted = fast
    known = token_for("mlflow-reader", "reader")
    by_alias, get = f"{API}/registered-models/alias", f"{API}/model-versions/get"
    await ask(app, "GET", by_alias, known, params={"name": model, "alias": "champion"})
    before = counted.calls
    champion = await ask(app, "GET", by_alias, known, params={"name": model, "alias": "champion"})
    assert champion[2]["model_version"]["version"] == "2"

    registry.set_registered_model_alias(model, "champion", "1")
    registry.update_model_version(model, "1", description="the champion again")
    champion = await ask(app, "GET", by_alias, known, params={"name": model, "alias": "champion"})
    assert champion[2]["model_version"]["version"] == "1"
    described = await ask(app, "GET", get, known, params={"name": model, "version": "1"})
    assert described[2]["model_version"]["description"] == "the champion again"
    assert counted.calls == before


async def test_reads_that_find_the_model_moved_share_one_whole_read_of_it(fast, model, registry):
    app, counted = fast
    known = token_for("mlflow-reader", "reader")
    get = f"{API}/model-versions/get"
    whole_reads = []

    async def seen(request: httpx.Request) -> None:
        if request.url.path.endswith("/with-versions"):
            whole_reads.append(request.url.path)
    app.state.mlflow_models.http.event_hooks["request"].append(seen)
    await ask(app, "GET", get, known, params={"name": model, "version": "2"})

    registry.update_model_version(model, "2", description="read together")
    whole_reads.clear()
    before = counted.calls
    answers = await asyncio.gather(*(ask(app, "GET", get, known, params={"name": model, "version": "2"})
                                     for _ in range(20)))
    assert {a[2]["model_version"]["description"] for a in answers} == {"read together"}
    assert len(whole_reads) == 1 and counted.calls == before


async def test_get_download_uri_names_a_version_registered_a_moment_before_and_leaves_refusals_to_the_routes(
        fast, model, registry):
    app, counted = fast
    known = token_for("mlflow-reader", "reader")
    uri = f"{API}/model-versions/get-download-uri"
    await ask(app, "GET", uri, known, params={"name": model, "version": "2"})  # the model cached at its seq now
    source = f"file:///nowhere/{uuid4().hex}"
    number = registry.create_model_version(model, source).version

    before = counted.calls
    fresh = await ask(app, "GET", uri, known, params={"name": model, "version": number})
    assert counted.calls == before, "the new version's URI went on to the routes"
    assert fresh == (200, "application/json", {"artifact_uri": source})

    for version in ("3", "99", "0", "x"):  # deleted, never registered, not a version number
        before = counted.calls
        refused = await ask(app, "GET", uri, known, params={"name": model, "version": version})
        assert counted.calls == before + 1, f"version {version} was answered by the fast path"
        routed = await ask(app, "GET", uri, token_for(f"new-{uuid4().hex[:6]}", "reader"),
                           params={"name": model, "version": version})
        assert refused == routed and refused[0] >= 400 and "error_code" in refused[2]
