"""The serving lookups' fast path against PostgreSQL: it answers a known
caller's lookups and outcome waits without FastAPI, with the very status,
headers and body the FastAPI routes give, and leaves everything else (new
tokens, refusals, bad paths and queries, missing models and aliases, other
routes) to those routes."""

import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace
from uuid import UUID, uuid4

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
from projector.outcome_wakeups import OutcomeWakeups
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
    app.state.settings = SimpleNamespace(projector_max_wait_s=30.0, projector_outcome_poll_s=0.05)
    app.state.outcome_wakeups = OutcomeWakeups(lambda: connect(dsn))  # not listening: waiters poll
    yield Counted(app), issuer
    await app.state.serving.seqs.close()
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


def as_caller(issuer: DevIssuer, *issue) -> dict[str, str]:
    """The Authorization header of a token `issuer` signs as `issue` says (subject, roles, grants)."""
    return {"Authorization": f"Bearer {issuer.issue(*issue)[1]}"}


async def answered_by_fastapi(fast, counted, method: str, path: str, headers: dict) -> int:
    """The status `fast` answers with, having handed the request on to FastAPI."""
    calls = counted.calls
    status, _, _ = await exchange(fast, method, path, headers)
    assert counted.calls == calls + 1, f"{method} {path[:60]} did not reach FastAPI"
    return status


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://projector")


async def exchange(app, method: str, path: str, headers: dict) -> tuple:
    async with client(app) as http:
        response = await http.request(method, path, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.content


async def test_a_known_callers_lookups_skip_fastapi_and_answer_as_its_routes_do(projector_app):
    counted, issuer = projector_app
    fast = LookupFastPath(counted)
    reader = as_caller(issuer, "serving", ("reader",))
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
    reader = as_caller(issuer, "serving", ("reader",))
    other_team = as_caller(issuer, "bob", ("reader",), ("team-b.*",))
    never_seen = as_caller(issuer, "new-caller", ("reader",))
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
        assert await answered_by_fastapi(fast, counted, method, path, headers) == status, (method, path)
    assert await exchange(fast, "GET", "/v1/models/fraud/stages/Production", never_seen) == \
        await exchange(counted, "GET", "/v1/models/fraud/stages/Production", never_seen)


async def add_outcome(pool, model: str, complete: bool = True, version: int | None = 2) -> str:
    command_id = uuid4()
    await pool.execute(
        "INSERT INTO command_outcomes (command_id, model, accepted, complete, last_seq, version, decided_at, events)"
        " VALUES ($1, $2, true, $3, 7, $4, $5, $6)", command_id, model, complete, version, NOW, ["TagSet"])
    return str(command_id)


async def test_a_known_callers_outcome_waits_skip_fastapi_and_answer_as_its_route_does(projector_app):
    counted, issuer = projector_app
    fast = LookupFastPath(counted)
    registrar = as_caller(issuer, "modelog-registrar", ("reader",))
    await exchange(counted, "GET", "/v1/models/fraud", registrar)  # the token is verified once, by FastAPI
    pool = counted.app.state.pool
    done, unfinished = await add_outcome(pool, "fraud"), await add_outcome(pool, "fraud", complete=False)
    asks = [f"/v1/commands/{done}", f"/v1/commands/{done}?wait=0", f"/v1/commands/{done}?wait=2.5&state=true",
            f"/v1/commands/{done}?state=false", f"/v1/commands/{done.replace('-', '').upper()}?wait=0",
            f"/v1/commands/{unfinished}?wait=0", f"/v1/commands/{uuid4()}?wait=0.1&state=true"]
    for path in asks:
        calls = counted.calls
        answered = await exchange(fast, "GET", path, registrar)
        assert counted.calls == calls, f"{path} reached FastAPI"
        assert answered == await exchange(counted, "GET", path, registrar), path
    assert [status for status, _, _ in [await exchange(fast, "GET", p, registrar) for p in asks]] == [
        200, 200, 200, 200, 200, 404, 404]
    with_state = (await exchange(fast, "GET", asks[2], registrar))[2]
    assert b'"state":{"model":{"name":"fraud"' in with_state and b'"version":{"model":"fraud","version":2' in with_state


async def test_a_waiting_outcome_is_answered_once_it_is_complete(projector_app):
    counted, issuer = projector_app
    fast = LookupFastPath(counted)
    registrar = as_caller(issuer, "modelog-registrar", ("reader",))
    await exchange(counted, "GET", "/v1/models/fraud", registrar)
    pool = counted.app.state.pool
    command_id = await add_outcome(pool, "fraud", complete=False)
    waiting = asyncio.create_task(exchange(fast, "GET", f"/v1/commands/{command_id}?wait=10", registrar))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await pool.execute("UPDATE command_outcomes SET complete = true WHERE command_id = $1", UUID(command_id))
    status, _, body = await asyncio.wait_for(waiting, 5)
    assert status == 200 and f'"command_id":"{command_id}"'.encode() in body


async def test_outcome_requests_it_cannot_answer_as_the_route_would_go_on_to_the_route(projector_app):
    counted, issuer = projector_app
    fast = LookupFastPath(counted)
    registrar = as_caller(issuer, "modelog-registrar", ("reader",))
    other_team = as_caller(issuer, "bob", ("reader",), ("team-b.*",))
    never_seen = as_caller(issuer, "new-caller", ("reader",))
    for headers in (registrar, other_team):
        await exchange(counted, "GET", "/v1/models/fraud", headers)
    done = await add_outcome(counted.app.state.pool, "fraud")
    left_to_fastapi = [
        (f"/v1/commands/{done}", never_seen, 200),
        (f"/v1/commands/{done}", {}, 401),
        (f"/v1/commands/{done}", other_team, 403),  # a reader elsewhere: the outcome's model is not theirs
        (f"/v1/commands/{done}?wait=-1", registrar, 422),
        (f"/v1/commands/{done}?wait=soon", registrar, 422),
        (f"/v1/commands/{done}?state=yes", registrar, 200),  # FastAPI's booleans are more than true/false
        (f"/v1/commands/{done}?other=1", registrar, 200),
        ("/v1/commands/not-a-uuid", registrar, 422),
    ]
    for path, headers, status in left_to_fastapi:
        assert await answered_by_fastapi(fast, counted, "GET", path, headers) == status, path
