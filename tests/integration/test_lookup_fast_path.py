"""The serving lookups' fast path against PostgreSQL: it answers a known
caller's lookups without FastAPI, with the very status, headers and body the
FastAPI routes give, and leaves everything else (new tokens, refusals, bad
paths, missing models and aliases, other routes) to those routes."""

from datetime import datetime, timezone
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from modelog_platform.adapters.postgres import connect, create_pool
from modelog_platform.adapters.s3 import ArtifactStore
from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.token_cache import VerifiedTokens
from modelog_platform.web import install_error_handlers
from projector.api import router
from projector.lookup_fast_path import LookupFastPath
from projector.rebuild import fresh_schema
from projector.serving import ServingAnswers
from tests.counted_app import Counted

pytestmark = pytest.mark.engines
NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)


@pytest.fixture
async def projector_app(engines, tmp_path):
    """The projector's routes over a read model holding `fraud`: v1 in
    Production and @champion, v2 in Staging."""
    schema = f"fast_path_{uuid4().hex[:8]}"
    dsn = await fresh_schema(engines.postgres(), schema)
    pool = await create_pool(dsn, 4)
    await pool.execute("INSERT INTO models (name, seq, head_hash, created_at, updated_at)"
                       " VALUES ('fraud', 7, 'h', $1, $1)", NOW)
    for version, stage in ((1, "Production"), (2, "Staging")):
        await pool.execute(
            "INSERT INTO model_versions (model, version, stage, artifact_uri, artifact_sha256, artifact_size,"
            " registered_by, registered_at) VALUES ('fraud', $1, $2, 's3://b/k', $3, 1, 'alice', $4)",
            version, stage, f"{version:064x}", NOW)
    await pool.execute("INSERT INTO aliases (model, alias, version, protected) VALUES ('fraud', 'champion', 1, false)")
    issuer = DevIssuer(tmp_path / "identity")
    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    app.state.pool = pool
    app.state.serving = ServingAnswers(ArtifactStore(engines), lambda: connect(dsn))
    app.state.verified_tokens = VerifiedTokens(issuer.verifier())
    yield Counted(app), issuer
    await app.state.serving.seqs.close()
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://projector")


async def exchange(app, method: str, path: str, headers: dict) -> tuple:
    async with client(app) as http:
        response = await http.request(method, path, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.content


async def test_a_known_callers_lookups_skip_fastapi_and_answer_as_its_routes_do(projector_app):
    counted, issuer = projector_app
    fast = LookupFastPath(counted)
    reader = {"Authorization": f"Bearer {issuer.issue('serving', ('reader',))[1]}"}
    await exchange(counted, "GET", "/v1/models/fraud", reader)  # the token is verified once, by FastAPI
    production = "/v1/models/fraud/stages/Production"
    lookups = [(production, reader), (production, {**reader, "If-None-Match": '"7"'}),
               (production, {**reader, "If-None-Match": '"6"'}), ("/v1/models/fraud/stages/None", reader),
               ("/v1/models/fraud/stages/Staging?ignored=1", reader), ("/v1/models/fraud/aliases/champion", reader),
               ("/v1/models/fraud/aliases/champion", {**reader, "If-None-Match": '"7"'})]
    for path, headers in lookups:
        calls = counted.calls
        answered = await exchange(fast, "GET", path, headers)
        assert counted.calls == calls, f"{path} reached FastAPI"
        assert answered == await exchange(counted, "GET", path, headers), path
    assert [status for status, _, _ in [await exchange(fast, "GET", p, h) for p, h in lookups]] == [
        200, 304, 200, 200, 200, 200, 304]


async def test_everything_else_goes_on_to_the_routes_and_their_errors(projector_app):
    counted, issuer = projector_app
    fast = LookupFastPath(counted)
    reader = {"Authorization": f"Bearer {issuer.issue('serving', ('reader',))[1]}"}
    other_team = {"Authorization": f"Bearer {issuer.issue('bob', ('reader',), ('team-b.*',))[1]}"}
    never_seen = {"Authorization": f"Bearer {issuer.issue('new-caller', ('reader',))[1]}"}
    for headers in (reader, other_team):
        await exchange(counted, "GET", "/v1/models/fraud", headers)  # both tokens known from here on
    left_to_fastapi = [
        ("GET", "/v1/models/fraud/stages/Production", never_seen, 200),  # verified now, by FastAPI
        ("GET", "/v1/models/fraud/stages/Production", {}, 401),
        ("GET", "/v1/models/fraud/stages/Production", {"Authorization": "Bearer not-a-token"}, 401),
        ("GET", "/v1/models/fraud/stages/Production", other_team, 403),
        ("GET", "/v1/models/fraud/stages/production", reader, 422),
        ("GET", "/v1/models/nobody/stages/Production", reader, 404),
        ("GET", "/v1/models/fraud/aliases/challenger", reader, 404),
        ("GET", "/v1/models/fraud/stages/Production/", reader, 307),  # to the path without the slash
        ("HEAD", "/v1/models/fraud/stages/Production", reader, 405),
        ("GET", "/v1/models/fraud", reader, 200),
    ]
    for method, path, headers, status in left_to_fastapi:
        calls = counted.calls
        answered = await exchange(fast, method, path, headers)
        assert counted.calls == calls + 1, f"{method} {path} did not reach FastAPI"
        assert answered[0] == status, (method, path, answered)
    assert await exchange(fast, "GET", "/v1/models/fraud/stages/Production", never_seen) == \
        await exchange(counted, "GET", "/v1/models/fraud/stages/Production", never_seen)
